#include "src/train/data_parallel.h"

#include <algorithm>

#include "src/core/check.h"

namespace kdgrid {

DataParallel::DataParallel(Communicator& dp, size_t n_params, bool zero)
    : dp_(dp),
      zero_(zero),
      shards_(n_params, dp.size()),
      begin_(zero ? shards_.begin(dp.rank()) : 0),
      end_(zero ? shards_.end(dp.rank()) : n_params) {
}

void DataParallel::reduceGradients(Tensor& grads) {
  if (!zero_) {
    dp_.allReduceSum(grads);
    return;
  }
  const int64_t n = static_cast<int64_t>(end_ - begin_);
  if (!shard_scratch_.defined()) shard_scratch_ = Tensor::empty({n}, DType::kF32, grads.backend());
  dp_.reduceScatterSum(grads, shard_scratch_, shards_);
  Tensor own = grads.rows(static_cast<int64_t>(begin_), n);
  copyTensor(own, shard_scratch_);
}

void DataParallel::sumOverShards(double& value) {
  if (zero_) dp_.allReduceSum(&value, 1);
}

void DataParallel::gatherParameters(Tensor& params) {
  if (zero_) dp_.allGather(params, shards_);
}

CheckpointMoments::CheckpointMoments(const DataParallel& dp, AdamW& optimizer, bool for_save)
    : optimizer_(optimizer),
      m_(optimizer.m(), for_save),
      v_(optimizer.v(), for_save),
      begin_(dp.begin()),
      end_(dp.end()),
      sharded_(dp.zero()) {
  KDGRID_CHECK(optimizer.begin() == dp.begin() && optimizer.end() == dp.end(),
               "the optimizer's range [{}, {}) is not this rank's [{}, {})", optimizer.begin(),
               optimizer.end(), dp.begin(), dp.end());
}

RankMoments CheckpointMoments::moments() const {
  return {m_.as<float>(), v_.as<float>(), begin_, end_, sharded_};
}

void CheckpointMoments::store() {
  m_.store(optimizer_.m());
  v_.store(optimizer_.v());
}

}  // namespace kdgrid
