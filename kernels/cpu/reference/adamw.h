// Scalar reference for cpu/adamw.h: the same update written out in double, fp32 I/O.
#pragma once

#include <cstdint>

#include "kernels/cpu/adamw.h"

namespace kdgrid::cpu::ref {

// Same contract as cpu::adamwStep without the low-precision copy.
void adamwStep(float* param, float* m, float* v, const float* grad, int64_t n,
               const AdamWConfig& config, int64_t step, float grad_scale, bool apply_weight_decay);

// sum_i x[i]^2 in double, i in [0, n), left to right.
double sumSquares(const float* x, int64_t n);

// True when no x[i] is inf or NaN (std::isfinite on each value).
template <typename T>
bool allFinite(const T* x, int64_t n);

}  // namespace kdgrid::cpu::ref
