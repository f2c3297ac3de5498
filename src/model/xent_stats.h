// Vocabulary-parallel cross-entropy statistics (DESIGN section 7: no rank holds
// full-vocabulary logits): for logits [n, V_local] (fp32, this rank's vocabulary shard) and
// targets [n] (uint32 global ids), each row's maximum over every tensor-parallel rank, and its
// sum of exp(z - max) and target logit summed over them. The LM head's loss
// (Gpt2Stage::headForwardBackward) and the teacher's top-k log-normaliser (teacher-logits) use
// it; the distillation losses fuse the same steps with their own (src/distill/kd_loss.cpp).
#pragma once

#include <cstdint>

#include "src/parallel/communicator.h"
#include "src/tensor/ops.h"
#include "src/tensor/runtime.h"

namespace kdgrid {

struct XentStats {
  int64_t n = 0;
  Tensor global_max;  // [n]
  Tensor sums;        // [2n]: sum of exp(z - global max) | target logit
  Tensor sumExp() const { return sums.rows(0, n); }
};

// Steps of kernels/cpu/cross_entropy.h: row statistics, MAX over `tp`, rescale, SUM over `tp`
// (the MAX and SUM only when tp has more than one rank). Tensors of rt's backend.
XentStats reduceXentStats(Runtime& rt, Communicator& tp, const Tensor& logits,
                          const Tensor& targets, const ops::VocabShard& shard);

}  // namespace kdgrid
