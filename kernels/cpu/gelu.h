// GELU, tanh approximation exactly as GPT-2 writes it, fast CPU version:
//   gelu(x) = 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3))).
// Reference: cpu/reference/gelu.h. T in {float, bf16, f16}; math in fp32.
//
// No fused bias+GELU: fc1's bias is added by the GEMM's epilogue for free, and the backward
// pass needs the biased pre-activation stored anyway, so a separate fused kernel would save
// no memory traffic.
#pragma once

#include <cstdint>

namespace kdgrid::cpu {

// out[i] = gelu(x[i]) for i in [0, n). out may alias x (same index only).
template <typename T>
void geluForward(T* out, const T* x, int64_t n);

// dx[i] = dout[i] * gelu'(x[i]) for i in [0, n); x is the forward input. dx is OVERWRITTEN;
// it may alias dout (same index only).
template <typename T>
void geluBackward(T* dx, const T* dout, const T* x, int64_t n);

}  // namespace kdgrid::cpu
