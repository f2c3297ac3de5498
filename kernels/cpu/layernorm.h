// LayerNorm over the last axis (GPT-2: pre-LN blocks and the final LN), fast CPU version.
// Reference: cpu/reference/layernorm.h. T in {float, bf16, f16}; math in fp32.
#pragma once

#include <cstdint>

namespace kdgrid::cpu {

inline constexpr float kLayerNormEps = 1e-5f;  // GPT-2's LayerNorm epsilon

// out[n, c] = (x[n, c] - mean[n]) * rstd[n] * weight[c] + bias[c], n in [0, rows),
// c in [0, cols), cols >= 1.
//   x, out: (rows, cols) row-major, T; out may not alias x.
//   weight, bias: (cols) fp32 parameters.
//   mean, rstd: (rows) fp32, written for the backward pass; either may be nullptr.
//     mean[n] = sum_c x[n, c] / cols; rstd[n] = 1 / sqrt(var[n] + eps), var biased (/ cols).
// Rows are independent: OpenMP over rows.
template <typename T>
void layerNormForward(T* out, float* mean, float* rstd, const T* x, const float* weight,
                      const float* bias, int64_t rows, int64_t cols, float eps = kLayerNormEps);

// Backward of layerNormForward, given the saved mean and rstd.
//   dout, x: (rows, cols) T; weight: (cols) fp32; mean, rstd: (rows) fp32.
//   dx: (rows, cols) T, OVERWRITTEN, or with accumulate_dx ADDED TO (dx += ...: the residual
//     stream's gradient already sits there). dx may not alias dout or x.
//   dweight, dbias: (cols) fp32 parameter gradients, ACCUMULATED (+=).
// Row blocks of fixed size carry their own dweight/dbias partials, summed in block order:
// the result does not depend on the thread count.
template <typename T>
void layerNormBackward(T* dx, float* dweight, float* dbias, const T* dout, const T* x,
                       const float* weight, const float* mean, const float* rstd, int64_t rows,
                       int64_t cols, bool accumulate_dx);

}  // namespace kdgrid::cpu
