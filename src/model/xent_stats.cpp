#include "src/model/xent_stats.h"

#include "src/tensor/staging.h"

namespace kdgrid {

XentStats reduceXentStats(Runtime& rt, Communicator& tp, const Tensor& logits,
                          const Tensor& targets, const ops::VocabShard& shard) {
  XentStats st;
  st.n = logits.dim(0);
  const int64_t n = st.n;
  Tensor local_max = rt.pool.zeros({n}, DType::kF32);
  st.global_max = rt.pool.empty({n}, DType::kF32);
  st.sums = rt.pool.zeros({2 * n}, DType::kF32);
  Tensor sum_exp = st.sums.rows(0, n), target_logit = st.sums.rows(n, n);
  ops::xentRowStats(rt, local_max, sum_exp, target_logit, logits, targets, shard);
  copyTensor(st.global_max, local_max);
  if (tp.size() > 1) {
    tp.allReduceMax(st.global_max);
    ops::xentRescaleSums(rt, st.sums, local_max, st.global_max);
    tp.allReduceSum(st.sums);
  }
  return st;
}

}  // namespace kdgrid
