// Data parallelism for the training step (DESIGN section 7): the gradient reduction over the
// dp group, and ZeRO-1 (`--zero 1`), where the AdamW state is sharded over the dp group.
//
// Without ZeRO: all-reduce the gradients; every dp rank updates every parameter.
// With ZeRO-1: this rank's flat buffer is dealt over the dp group (FlatShards: contiguous
// shards of ceil(n / dp) elements); reduce-scatter the gradients so each rank holds the summed
// gradient of its shard, update only that shard (AdamW keeps m and v for it alone), then
// all-gather the parameters. Same arithmetic per element, 1/dp of the optimizer memory, and
// (dp-1)/dp n floats sent each way instead of 2 (dp-1)/dp n in one all-reduce.
#pragma once

#include <optional>

#include <cstddef>
#include <vector>

#include "src/inference/model_checkpoint.h"
#include "src/optim/adamw.h"
#include "src/parallel/communicator.h"
#include "src/tensor/staging.h"

namespace kdgrid {

class DataParallel {
 public:
  DataParallel(Communicator& dp, size_t n_params, bool zero);

  bool zero() const { return zero_; }
  // The range of the flat buffers this rank's optimizer updates and whose gradient norm it
  // counts: everything without ZeRO, its shard with.
  size_t begin() const { return begin_; }
  size_t end() const { return end_; }

  // Sums grads [n_params] over the dp group. Afterwards grads[begin, end) hold the sums; with
  // ZeRO the rest of the buffer is stale (the caller zeroes it before the next step).
  void reduceGradients(Tensor& grads);
  // Adds this rank's share of a scalar over the dp group when ranks count disjoint ranges
  // (ZeRO: the squared gradient norm); without ZeRO every rank already has the total.
  void sumOverShards(double& value);
  // After the optimizer step: with ZeRO, every rank's updated shard of params [n_params]
  // reaches every rank; nothing to do without.
  void gatherParameters(Tensor& params);

  Communicator& comm() { return dp_; }
  const FlatShards& shards() const { return shards_; }

 private:
  Communicator& dp_;
  bool zero_;
  FlatShards shards_;
  size_t begin_, end_;
  Tensor shard_scratch_;  // [end - begin] reduce-scatter output (ZeRO), on the grads' backend
};

// This rank's AdamW moments as a checkpoint sees them (src/inference/model_checkpoint.h): the
// optimizer's own buffers over [begin, end), as host views (staged copies where the backend's
// memory is not host-addressable). With ZeRO-1 each rank saves and loads only its shard,
// straight into the full logical datasets (DESIGN section 5 stores them unsharded, so a ZeRO
// run resumes without ZeRO and vice versa); no rank holds the full moments.
class CheckpointMoments {
 public:
  // for_save: the views hold the optimizer's moments; else they receive a load (then store()).
  CheckpointMoments(const DataParallel& dp, AdamW& optimizer, bool for_save);
  RankMoments moments() const;
  // After a load: the moments read go into the optimizer (nothing to copy without staging).
  void store();

 private:
  AdamW& optimizer_;
  HostView m_, v_;
  size_t begin_, end_;
  bool sharded_;
};

}  // namespace kdgrid
