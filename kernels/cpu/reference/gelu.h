// Scalar reference for cpu/gelu.h: the tanh formula written out, in double.
// Real in {float, double}: double I/O is for the finite-difference checks.
#pragma once

#include <cstdint>

namespace kdgrid::cpu::ref {

// out[i] = 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))), i in [0, n).
template <typename Real>
void geluForward(Real* out, const Real* x, int64_t n);

// dx[i] = dout[i] * d/dx gelu(x[i]), overwritten, i in [0, n).
template <typename Real>
void geluBackward(Real* dx, const Real* dout, const Real* x, int64_t n);

}  // namespace kdgrid::cpu::ref
