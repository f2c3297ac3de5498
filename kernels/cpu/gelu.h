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

// Training forward: out[i] = gelu(x[i]) and deriv[i] = gelu'(x[i]) for i in [0, n), from one
// exponential per element. deriv may alias x (same index only; the model keeps gelu' over
// fc1's output, which the backward needs for nothing else); out may not alias either. Values
// are bit-identical to geluForward and to the factor geluBackward applies (fp32 storage), so
// geluBackwardFromDerivative(dout, deriv) == geluBackward(dout, x) in fp32; a bf16/f16 deriv is
// rounded to its storage type.
template <typename T>
void geluForwardWithDerivative(T* out, T* deriv, const T* x, int64_t n);

// dx[i] = dout[i] * deriv[i] for i in [0, n), deriv from geluForwardWithDerivative: the
// backward without recomputing the exponential (one streaming multiply). dx is OVERWRITTEN;
// it may alias dout (same index only).
template <typename T>
void geluBackwardFromDerivative(T* dx, const T* dout, const T* deriv, int64_t n);

}  // namespace kdgrid::cpu
