// Fused AdamW step over a flat fp32 parameter buffer, plus the two reductions the optimizer
// needs first (global gradient norm, overflow check). Fast CPU version; reference:
// cpu/reference/adamw.h.
#pragma once

#include <cstdint>

namespace kdgrid::cpu {

// Hyper-parameters; betas and eps default to GPT-2 / llm.c's choice.
struct AdamWConfig {
  float lr = 3e-4f;           // learning rate of this step (the schedule is the caller's)
  float beta1 = 0.9f;         // first-moment decay
  float beta2 = 0.95f;        // second-moment decay
  float eps = 1e-8f;          // added to sqrt(v_hat)
  float weight_decay = 0.0f;  // decoupled decay, used only where apply_weight_decay is set
};

// One step for i in [0, n), with t = step (1-based) and g = grad[i] * grad_scale:
//   m[i] = beta1 m[i] + (1 - beta1) g;   v[i] = beta2 v[i] + (1 - beta2) g^2
//   m_hat = m[i] / (1 - beta1^t);        v_hat = v[i] / (1 - beta2^t)
//   param[i] -= lr * (m_hat / (sqrt(v_hat) + eps) + wd * param[i]),
//   wd = apply_weight_decay ? weight_decay : 0 (GPT-2 decays matrices, not biases/LN/...).
// grad_scale folds gradient clipping and loss-scale unscaling into the one pass.
// param, m, v: (n) fp32, updated in place; grad: (n) fp32, read only.
// param_copy: (n) T or nullptr: receives T(param[i]) after the update, the low-precision
// copy that mixed-precision compute reads (rounded as src/core/dtype.h does).
// T in {float, bf16, f16}; without a copy, name T explicitly: adamwStep<float>(..., nullptr, ...).
template <typename T>
void adamwStep(float* param, float* m, float* v, const float* grad, T* param_copy, int64_t n,
               const AdamWConfig& config, int64_t step, float grad_scale, bool apply_weight_decay);

// sum_i x[i]^2 over i in [0, n), accumulated in double (for the global gradient norm; the
// caller adds the ranks' sums before the square root). Fixed-size blocks summed in order:
// independent of the thread count.
double sumSquares(const float* x, int64_t n);

// True when every x[i], i in [0, n), is finite (no inf, no NaN): the fp16 loss-scaling check.
// T in {float, bf16, f16}.
template <typename T>
bool allFinite(const T* x, int64_t n);

}  // namespace kdgrid::cpu
