#include "checkpoints/verify.h"

#include <algorithm>
#include <filesystem>
#include <vector>

#include "checkpoints/checksum.h"
#include "checkpoints/format.h"
#include "src/core/agreement.h"
#include "src/core/log.h"

namespace kdgrid {

namespace {

constexpr uint64_t kReadBatchElements = uint64_t{1} << 20;  // 4 MiB of float32 per read

// Reads `ds` in row batches and compares the recomputed checksum with the stored one.
void verifyTensor(const h5::Dataset& ds) {
  const uint64_t stored = ds.readIntAttribute<uint64_t>(kChecksumAttribute);
  const uint64_t row = ds.rowElements();
  const uint64_t rows = ds.dims()[0];
  const uint64_t batch = std::max<uint64_t>(1, kReadBatchElements / std::max<uint64_t>(row, 1));
  uint64_t sum = 0;
  for (uint64_t begin = 0; begin < rows; begin += batch) {
    const uint64_t count = std::min(batch, rows - begin);
    const std::vector<float> values = ds.readRows<float>(begin, count);
    sum += checksumRun(values.data(), values.size(), begin * row);
  }
  if (sum != stored) {
    ds.fail(
        fmt::format("checksum mismatch (stored {:#018x}, computed {:#018x}): the data is corrupt",
                    stored, sum));
  }
}

}  // namespace

std::optional<std::string> verifyCheckpoint(const std::string& step_dir,
                                            const WorldCollectives& world) {
  namespace fs = std::filesystem;
  const std::string model_path = (fs::path(step_dir) / kModelFileName).string();
  const std::string optimizer_path = (fs::path(step_dir) / kOptimizerFileName).string();
  std::optional<Failure> local;
  // Order of reporting: 0 model.h5 header, 1 optimizer.h5 header, then the tensors.
  std::vector<TensorShape> shapes;  // the datasets of /model
  bool moments = false;
  try {
    const h5::File model = h5::File::openRead(model_path);
    const ModelHeader header = readModelHeader(model);
    const h5::Group group = model.openGroup(kModelGroup);
    for (const std::string& name : group.datasetNames()) {
      const h5::Dataset ds = group.openDataset(name);
      if (ds.rank() != 1 && ds.rank() != 2) ds.fail("is not a 1-D or 2-D tensor");
      shapes.push_back({name, static_cast<int64_t>(ds.dims()[0]),
                        ds.rank() == 2 ? static_cast<int64_t>(ds.dims()[1]) : 1});
    }
    try {
      const h5::File optimizer = h5::File::openRead(optimizer_path);
      const TrainingState state = readOptimizerHeader(optimizer);
      if (state.step != header.step) {
        optimizer.fail(
            fmt::format("holds step {}, but {} holds step {}: the files do not belong together",
                        state.step, model_path, header.step));
      }
      moments = optimizer.contains(kFirstMomentGroup);
      if (moments != optimizer.contains(kSecondMomentGroup)) {
        optimizer.fail("has only one of the groups /m and /v");
      }
    } catch (const std::exception& e) {
      local = Failure{1, e.what()};
    }
  } catch (const std::exception& e) {
    local = Failure{0, e.what()};
  }

  if (!local) {
    const int n = static_cast<int>(shapes.size());
    const int items = n * (moments ? 3 : 1);
    int rank = worldRank(), size = worldSize();
    std::optional<h5::File> model, optimizer;
    for (int item = rank; item < items && !local; item += size) {
      try {
        const int kind = item / n;  // 0 model, 1 m, 2 v
        std::optional<h5::File>& file = kind == 0 ? model : optimizer;
        if (!file) file = h5::File::openRead(kind == 0 ? model_path : optimizer_path);
        const char* group = kind == 0   ? kModelGroup
                            : kind == 1 ? kFirstMomentGroup
                                        : kSecondMomentGroup;
        verifyTensor(openTensor(file->openGroup(group), shapes[item % n]));
      } catch (const std::exception& e) {
        local = Failure{2 + item, e.what()};
      }
    }
  }
  const std::optional<Failure> first = firstFailure(local, world);
  if (!first) return std::nullopt;
  return first->message;
}

}  // namespace kdgrid
