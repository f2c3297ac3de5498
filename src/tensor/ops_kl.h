// Distillation ops (kernels/cpu/kl.h): the divergence between student and teacher logits,
// vocabulary-parallel, as steps around the caller's tensor-parallel all-reduces. Every
// argument is a tensor of the runtime's backend; the row count N is student's dim 0.
// Statistics are fp32: maxes [2, N], sums [3, N], jsd terms [2, N], loss [N]; ids uint32 and
// logprobs fp32 [N, k]. Optional tensors are null where kernels/cpu/kl.h allows.
#pragma once

#include "kernels/cpu/kl.h"
#include "src/tensor/runtime.h"
#include "src/tensor/tensor.h"

namespace kdgrid::ops {

// Step 1, dense.
void klRowStats(Runtime& rt, Tensor& local_max, Tensor& local_sums, const Tensor& student,
                const Tensor& teacher, const cpu::VocabSlice& slice, float temperature,
                cpu::Divergence d);
// Step 3.
void klRescaleSums(Runtime& rt, Tensor& sums, const Tensor& local_max, const Tensor& global_max,
                   cpu::Divergence d);
// Step 5 (jsd), dense.
void klJsdTerms(Runtime& rt, Tensor& terms, const Tensor& student, const Tensor& teacher,
                const Tensor& global_max, const Tensor& global_sums, const cpu::VocabSlice& slice,
                float temperature);
// Step 6: loss [N].
void klLoss(Runtime& rt, Tensor& loss, const Tensor& global_sums, const Tensor* jsd_terms,
            cpu::Divergence d);

// The cross-entropy term fused into klBackward (kernels/cpu/kl.h XentGradTerm).
struct XentTerm {
  const Tensor* global_max = nullptr;  // [N]
  const Tensor* global_sum = nullptr;  // [N]
  const Tensor* targets = nullptr;     // [N] uint32
  float row_scale = 0;
};
// Step 7, dense: grad (may be student itself) = row_scale * dD/dz_s (+ the xent term).
void klBackward(Runtime& rt, Tensor& grad, const Tensor& student, const Tensor& teacher,
                const Tensor& global_max, const Tensor& global_sums, const Tensor& divergence,
                const Tensor* jsd_terms, const cpu::VocabSlice& slice, float temperature,
                cpu::Divergence d, float row_scale, const XentTerm* xent);

// Top-k forms.
void klTopkRowStats(Runtime& rt, Tensor& local_max, Tensor& local_sums, const Tensor& student,
                    const Tensor& ids, const Tensor& logprobs, const cpu::VocabSlice& slice,
                    float temperature, float teacher_scale, cpu::Divergence d);
void klTopkJsdTerms(Runtime& rt, Tensor& terms, const Tensor& student, const Tensor& ids,
                    const Tensor& logprobs, const Tensor& global_max, const Tensor& global_sums,
                    const cpu::VocabSlice& slice, float temperature, float teacher_scale);
void klTopkBackward(Runtime& rt, Tensor& grad_k, const Tensor& student, const Tensor& ids,
                    const Tensor& logprobs, const Tensor& global_max, const Tensor& global_sums,
                    const Tensor& divergence, const Tensor* jsd_terms,
                    const cpu::VocabSlice& slice, float temperature, float teacher_scale,
                    cpu::Divergence d, float row_scale);
void klTopkScatterAdd(Runtime& rt, Tensor& grad, const Tensor& grad_k, const Tensor& ids,
                      const cpu::VocabSlice& slice);

}  // namespace kdgrid::ops
