// Elementwise and small reduction helpers, fast CPU versions: residual add, bias add, dtype
// conversion, scale, zero fill, bias-gradient column sums. Reference:
// cpu/reference/elementwise.h. T, Dst, Src in {float, bf16, f16}; math in fp32.
#pragma once

#include <cstdint>

namespace kdgrid::cpu {

// out[i] = a[i] + b[i], i in [0, n); out may alias a or b (the residual stream adds a
// block's output into itself).
template <typename T>
void residualAdd(T* out, const T* a, const T* b, int64_t n);

// y[r, c] = T(float(y[r, c]) + b[c]), r in [0, rows), c in [0, cols): a bias added to every
// row. y: (rows, cols) T, in place; b: (cols) fp32. One fp32 add per element, rounded once to
// T as dtype.h does (for fp32 simply y + b). The work is split over (row, 1024-column chunk)
// pairs, so one long row is shared by the threads too; each element is written by one thread.
template <typename T>
void addBias(T* y, const float* b, int64_t rows, int64_t cols);

// dst[i] = Dst(src[i]), i in [0, n), rounded exactly as src/core/dtype.h's bf16/f16 do
// (round to nearest even; NaN stays NaN; bf16 keeps denormals). Between bf16 and f16 the
// value goes through fp32; between equal types it is a bit copy. dst may not overlap src.
template <typename Dst, typename Src>
void convertBuffer(Dst* dst, const Src* src, int64_t n);

// x[i] *= scale, i in [0, n).
template <typename T>
void scaleInPlace(T* x, float scale, int64_t n);

// x[i] = 0 (+0.0), i in [0, n).
template <typename T>
void zeroFill(T* x, int64_t n);

// db[c] += sum_{r in [0, rows)} dy[r, c], c in [0, cols): the gradient of a bias added to
// every row. dy: (rows, cols) T; db: (cols) fp32, ACCUMULATED. Fixed row blocks summed in
// order: independent of the thread count.
template <typename T>
void biasGradColumnSum(float* db, const T* dy, int64_t rows, int64_t cols);

}  // namespace kdgrid::cpu
