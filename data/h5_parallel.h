// Parallel HDF5 on top of the RAII layer (h5.h), for checkpoints: files opened through MPI-IO
// by every rank of a communicator, and block (hyperslab) transfers of 1-D and 2-D datasets.
//
// With an MPI-IO file, creating or closing the file and every metadata change (groups,
// datasets, attributes) is collective: every rank makes the same calls with the same
// arguments in the same order. A collective transfer (Transfer::kCollective) needs every rank
// too; a rank with nothing to move passes no blocks and still takes part.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "data/h5.h"

namespace kdgrid::h5 {

// A file-access property list for MPI-IO on `comm`, for File::create and File::openRead.
Handle mpioFileAccess(MPI_Comm comm);

// Rows [row0, row0 + rows) and columns [col0, col0 + cols) of a 2-D dataset; of a 1-D
// dataset, elements [row0, row0 + rows) with col0 = 0, cols = 1.
struct Block {
  uint64_t row0 = 0, rows = 0, col0 = 0, cols = 1;
};

enum class Transfer { kIndependent, kCollective };

// Elements in `blocks` (their sizes summed).
uint64_t blockElements(const std::vector<Block>& blocks);

// Writes (reads) the union of `blocks`, which must not overlap. The buffer holds the selected
// elements in row-major order of their dataset coordinates (HDF5's order for a selection),
// blockElements(blocks) of them, as `mem_type`.
void writeBlocks(Dataset& dataset, ElemType mem_type, const std::vector<Block>& blocks,
                 const void* data, Transfer transfer);
void readBlocks(const Dataset& dataset, ElemType mem_type, const std::vector<Block>& blocks,
                void* out, Transfer transfer);

// A scalar uint64 attribute (replaced when present).
void writeUInt64Attribute(Object& object, const std::string& attr, uint64_t value);

}  // namespace kdgrid::h5
