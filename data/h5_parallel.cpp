#include "data/h5_parallel.h"

#include <fmt/format.h>

#include <mutex>

namespace kdgrid::h5 {

namespace {

std::string reasonSuffix() {
  const std::string reason = lastErrorReason();
  return reason.empty() ? "" : fmt::format(" (HDF5: {})", reason);
}

// The file dataspace of `dataset` with the union of `blocks` selected (none when empty).
Handle selectBlocks(const Dataset& dataset, const std::vector<Block>& blocks) {
  Handle space(H5Dget_space(dataset.id()), H5Sclose);
  if (!space.valid()) dataset.fail("cannot read its dataspace" + reasonSuffix());
  const int rank = dataset.rank();
  if (rank != 1 && rank != 2)
    dataset.fail(fmt::format("block transfers need 1 or 2 dimensions, it has {}", rank));
  const std::vector<uint64_t>& dims = dataset.dims();
  if (blocks.empty()) {
    if (H5Sselect_none(space.get()) < 0) dataset.fail("cannot clear a selection" + reasonSuffix());
    return space;
  }
  H5S_seloper_t op = H5S_SELECT_SET;
  for (const Block& b : blocks) {
    const uint64_t ncols = rank == 2 ? dims[1] : 1;
    if (b.row0 > dims[0] || b.rows > dims[0] - b.row0 || b.col0 > ncols ||
        b.cols > ncols - b.col0 || (rank == 1 && (b.col0 != 0 || b.cols != 1))) {
      dataset.fail(fmt::format("block rows [{}, {}) columns [{}, {}) lies outside its shape",
                               b.row0, b.row0 + b.rows, b.col0, b.col0 + b.cols));
    }
    if (b.rows == 0 || b.cols == 0) continue;
    const hsize_t start[2] = {b.row0, b.col0}, count[2] = {b.rows, b.cols};
    if (H5Sselect_hyperslab(space.get(), op, start, nullptr, count, nullptr) < 0) {
      dataset.fail("cannot select a block" + reasonSuffix());
    }
    op = H5S_SELECT_OR;
  }
  if (op == H5S_SELECT_SET && H5Sselect_none(space.get()) < 0) {  // only empty blocks
    dataset.fail("cannot clear a selection" + reasonSuffix());
  }
  const hssize_t selected = H5Sget_select_npoints(space.get());
  if (selected < 0 || static_cast<uint64_t>(selected) != blockElements(blocks)) {
    dataset.fail(fmt::format("{} blocks of {} elements select {} (they overlap)", blocks.size(),
                             blockElements(blocks), selected));
  }
  return space;
}

Handle transferList(const Dataset& dataset, Transfer transfer) {
  Handle dxpl(H5Pcreate(H5P_DATASET_XFER), H5Pclose);
  const H5FD_mpio_xfer_t mode =
      transfer == Transfer::kCollective ? H5FD_MPIO_COLLECTIVE : H5FD_MPIO_INDEPENDENT;
  // The MPI-IO mode only matters for files opened through MPI-IO; others ignore it.
  if (!dxpl.valid() || H5Pset_dxpl_mpio(dxpl.get(), mode) < 0) {
    dataset.fail("cannot create a transfer property list" + reasonSuffix());
  }
  return dxpl;
}

// A 1-D memory dataspace of n elements, all selected (none when n = 0).
Handle memorySpace(const Dataset& dataset, uint64_t n) {
  const hsize_t extent = n == 0 ? 1 : n;
  Handle space(H5Screate_simple(1, &extent, nullptr), H5Sclose);
  if (!space.valid() || (n == 0 && H5Sselect_none(space.get()) < 0)) {
    dataset.fail("cannot create a memory dataspace" + reasonSuffix());
  }
  return space;
}

}  // namespace

Handle mpioFileAccess(MPI_Comm comm) {
  std::lock_guard<std::recursive_mutex> lock(hdf5Mutex());
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  KDGRID_CHECK(fapl.valid() && H5Pset_fapl_mpio(fapl.get(), comm, MPI_INFO_NULL) >= 0,
               "HDF5: cannot set up MPI-IO file access{}", reasonSuffix());
  return fapl;
}

uint64_t blockElements(const std::vector<Block>& blocks) {
  uint64_t n = 0;
  for (const Block& b : blocks) n += b.rows * b.cols;
  return n;
}

void writeBlocks(Dataset& dataset, ElemType mem_type, const std::vector<Block>& blocks,
                 const void* data, Transfer transfer) {
  std::lock_guard<std::recursive_mutex> lock(hdf5Mutex());
  Handle file_space = selectBlocks(dataset, blocks);
  const uint64_t n = blockElements(blocks);
  Handle mem_space = memorySpace(dataset, n);
  Handle type = makeType(mem_type);
  Handle dxpl = transferList(dataset, transfer);
  const float dummy = 0;  // HDF5 wants a non-null buffer even for an empty selection
  if (H5Dwrite(dataset.id(), type.get(), mem_space.get(), file_space.get(), dxpl.get(),
               n == 0 ? &dummy : data) < 0) {
    dataset.fail(
        fmt::format("cannot write {} elements in {} blocks{}", n, blocks.size(), reasonSuffix()));
  }
}

void readBlocks(const Dataset& dataset, ElemType mem_type, const std::vector<Block>& blocks,
                void* out, Transfer transfer) {
  std::lock_guard<std::recursive_mutex> lock(hdf5Mutex());
  Handle file_space = selectBlocks(dataset, blocks);
  const uint64_t n = blockElements(blocks);
  Handle mem_space = memorySpace(dataset, n);
  Handle type = makeType(mem_type);
  Handle dxpl = transferList(dataset, transfer);
  float dummy = 0;
  if (H5Dread(dataset.id(), type.get(), mem_space.get(), file_space.get(), dxpl.get(),
              n == 0 ? &dummy : out) < 0) {
    dataset.fail(
        fmt::format("cannot read {} elements in {} blocks{}", n, blocks.size(), reasonSuffix()));
  }
}

void writeUInt64Attribute(Object& object, const std::string& attr, uint64_t value) {
  std::lock_guard<std::recursive_mutex> lock(hdf5Mutex());
  if (object.hasAttribute(attr) && H5Adelete(object.id(), attr.c_str()) < 0) {
    object.fail(fmt::format("cannot replace attribute '{}'{}", attr, reasonSuffix()));
  }
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle handle(
      H5Acreate2(object.id(), attr.c_str(), H5T_STD_U64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT),
      H5Aclose);
  if (!handle.valid() || H5Awrite(handle.get(), H5T_NATIVE_UINT64, &value) < 0) {
    object.fail(fmt::format("cannot write attribute '{}'{}", attr, reasonSuffix()));
  }
}

}  // namespace kdgrid::h5
