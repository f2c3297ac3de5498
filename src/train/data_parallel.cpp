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
  if (zero_) shard_scratch_.resize(end_ - begin_);
}

void DataParallel::reduceGradients(float* grads) {
  if (!zero_) {
    dp_.allReduceSum(grads, shards_.total());
    return;
  }
  dp_.reduceScatterSum(grads, shard_scratch_.data(), shards_);
  std::copy(shard_scratch_.begin(), shard_scratch_.end(), grads + begin_);
}

void DataParallel::sumOverShards(double& value) {
  if (zero_) dp_.allReduceSum(&value, 1);
}

void DataParallel::gatherParameters(float* params) {
  if (zero_) dp_.allGather(params, shards_);
}

RankMoments checkpointMoments(const DataParallel& dp, AdamW& optimizer) {
  KDGRID_CHECK(optimizer.begin() == dp.begin() && optimizer.end() == dp.end(),
               "the optimizer's range [{}, {}) is not this rank's [{}, {})", optimizer.begin(),
               optimizer.end(), dp.begin(), dp.end());
  return {optimizer.m().data<float>(), optimizer.v().data<float>(), dp.begin(), dp.end(),
          dp.zero()};
}

}  // namespace kdgrid
