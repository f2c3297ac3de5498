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

FullMoments::FullMoments(DataParallel& dp, AdamW& optimizer) : dp_(dp), optimizer_(optimizer) {
  KDGRID_CHECK(optimizer.begin() == dp.begin() && optimizer.end() == dp.end(),
               "the optimizer's range [{}, {}) is not this rank's [{}, {})", optimizer.begin(),
               optimizer.end(), dp.begin(), dp.end());
  if (dp.zero()) {
    m_copy_.assign(dp.shards().total(), 0.0f);
    v_copy_.assign(dp.shards().total(), 0.0f);
    m_ = m_copy_.data();
    v_ = v_copy_.data();
  } else {
    m_ = optimizer.m().data<float>();
    v_ = optimizer.v().data<float>();
  }
}

void FullMoments::gather() {
  if (!dp_.zero()) return;
  const size_t begin = dp_.begin(), n = dp_.end() - dp_.begin();
  std::copy_n(optimizer_.m().data<float>(), n, m_ + begin);
  std::copy_n(optimizer_.v().data<float>(), n, v_ + begin);
  dp_.comm().allGather(m_, dp_.shards());
  dp_.comm().allGather(v_, dp_.shards());
}

void FullMoments::keepShard() {
  if (!dp_.zero()) return;
  const size_t begin = dp_.begin(), n = dp_.end() - dp_.begin();
  std::copy_n(m_ + begin, n, optimizer_.m().data<float>());
  std::copy_n(v_ + begin, n, optimizer_.v().data<float>());
}

}  // namespace kdgrid
