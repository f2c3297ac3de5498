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
    m_view_.emplace(optimizer.m(), true);
    v_view_.emplace(optimizer.v(), true);
    m_ = m_view_->as<float>();
    v_ = v_view_->as<float>();
  }
}

void FullMoments::gather() {
  if (!dp_.zero()) return;
  const size_t begin = dp_.begin();
  copyToHost(optimizer_.m(), m_ + begin);
  copyToHost(optimizer_.v(), v_ + begin);
  dp_.comm().allGather(m_, dp_.shards());
  dp_.comm().allGather(v_, dp_.shards());
}

void FullMoments::keepShard() {
  if (!dp_.zero()) {
    m_view_->store(optimizer_.m());
    v_view_->store(optimizer_.v());
    return;
  }
  const size_t begin = dp_.begin();
  copyFromHost(optimizer_.m(), m_ + begin);
  copyFromHost(optimizer_.v(), v_ + begin);
}

}  // namespace kdgrid
