// The distillation loss on one chunk of the LM head's logits, vocabulary-parallel: the
// kernels of kernels/cpu/kl.h and cross_entropy.h around this tensor-parallel group's
// all-reduces (one MAX and one SUM for cross-entropy and divergence together, one more SUM
// for jsd). No rank holds full-vocabulary logits.
//
// Conventions: logits are [n, V_local] fp32 tensors of rt's backend for the global ids of
// `slice`; targets [n] (host) are global ids or kXentIgnore (rows not scored: evaluation tails). With grad_scale > 0 the
// student's logits are overwritten by d L / d logits * grad_scale, L = alpha * T^2 * D +
// (1 - alpha) * CE summed over rows; a backward needs every target valid (training has no
// ignored rows). Returned sums: ce_sum and kl_sum (D, unscaled) over the scored rows.
#pragma once

#include <cstdint>

#include "kernels/cpu/cross_entropy.h"
#include "src/distill/kd_config.h"
#include "src/model/gpt2.h"
#include "src/parallel/communicator.h"
#include "src/tensor/tensor.h"

namespace kdgrid {

// Online: the teacher's logits chunk for the same rows and vocabulary slice.
LossSums kdDenseChunk(Runtime& rt, Tensor& student_logits, const Tensor& teacher_logits,
                      const uint32_t* targets, const cpu::VocabSlice& slice, Communicator& tp,
                      const KdParams& kd, float grad_scale);

// Offline: the teacher's top-k ids and log-probabilities [n, k] (at temperature T0, used at
// kd.temperature through teacher_scale = T0 / kd.temperature; see kernels/cpu/kl.h).
// ids, logprobs and targets are host arrays (uploaded here).
LossSums kdTopkChunk(Runtime& rt, Tensor& student_logits, const uint32_t* ids,
                     const float* logprobs, int64_t k, float teacher_scale,
                     const uint32_t* targets, const cpu::VocabSlice& slice, Communicator& tp,
                     const KdParams& kd, float grad_scale);

// `eval --teacher`: per scored row, the student's cross-entropy, KL(p_t || p_s) at T = 1 and
// whether the two argmaxes agree (vocabulary-parallel argmax: MAX all-reduce of the values,
// then of minus the lowest global index attaining it, so ties go to the lowest id).
struct AgreementSums {
  double ce_sum = 0;
  double kl_sum = 0;
  int64_t agree = 0;
  int64_t tokens = 0;
};
AgreementSums teacherAgreementChunk(Runtime& rt, const Tensor& student_logits,
                                    const Tensor& teacher_logits, const uint32_t* targets,
                                    const cpu::VocabSlice& slice, Communicator& tp);

}  // namespace kdgrid
