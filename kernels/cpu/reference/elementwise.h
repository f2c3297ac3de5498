// Scalar references for cpu/elementwise.h: same contracts, plain loops, fp32 I/O (sums in
// double); conversions element by element through src/core/dtype.h.
#pragma once

#include <cstdint>

namespace kdgrid::cpu::ref {

void residualAdd(float* out, const float* a, const float* b, int64_t n);

// y[r, c] += b[c] over (rows, cols) y, in fp32.
void addBias(float* y, const float* b, int64_t rows, int64_t cols);

// dst[i] = Dst(float(src[i])) with dtype.h's scalar constructors; a bit copy when Dst is Src.
template <typename Dst, typename Src>
void convertBuffer(Dst* dst, const Src* src, int64_t n);

void scaleInPlace(float* x, float scale, int64_t n);

// db[c] += sum_r dy[r, c], summed in double.
void biasGradColumnSum(float* db, const float* dy, int64_t rows, int64_t cols);

}  // namespace kdgrid::cpu::ref
