// Scalar reference for cpu/layernorm.h: same contract (shapes, accumulation), plain loops,
// sums and statistics in double. Real in {float, double}: double I/O is for the
// finite-difference checks of the backward pass.
#pragma once

#include <cstdint>

namespace kdgrid::cpu::ref {

// out = (x - mean) * rstd * weight + bias per row; x, out: (rows, cols); weight, bias: (cols);
// mean, rstd: (rows), written when not nullptr.
template <typename Real>
void layerNormForward(Real* out, Real* mean, Real* rstd, const Real* x, const Real* weight,
                      const Real* bias, int64_t rows, int64_t cols, double eps = 1e-5);

// dx: (rows, cols), overwritten, or added to with accumulate_dx; dweight, dbias: (cols),
// accumulated (+=). mean, rstd as saved by layerNormForward.
template <typename Real>
void layerNormBackward(Real* dx, Real* dweight, Real* dbias, const Real* dout, const Real* x,
                       const Real* weight, const Real* mean, const Real* rstd, int64_t rows,
                       int64_t cols, bool accumulate_dx);

}  // namespace kdgrid::cpu::ref
