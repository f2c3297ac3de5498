#include "kernels/cpu/reference/elementwise.h"

#include <type_traits>
#include <vector>

#include "src/core/dtype.h"

namespace kdgrid::cpu::ref {

void residualAdd(float* out, const float* a, const float* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

void addBias(float* y, const float* b, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) y[r * cols + c] += b[c];
  }
}

template <typename Dst, typename Src>
void convertBuffer(Dst* dst, const Src* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if constexpr (std::is_same_v<Dst, Src>) {
      dst[i] = src[i];
    } else {
      dst[i] = fromFloat<Dst>(toFloat(src[i]));
    }
  }
}

void scaleInPlace(float* x, float scale, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] *= scale;
}

void biasGradColumnSum(float* db, const float* dy, int64_t rows, int64_t cols) {
  std::vector<double> sum(static_cast<size_t>(cols), 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) sum[c] += dy[r * cols + c];
  }
  for (int64_t c = 0; c < cols; ++c) db[c] = static_cast<float>(db[c] + sum[c]);
}

#define KDGRID_INSTANTIATE_REF_CONVERT(D, S) \
  template void convertBuffer<D, S>(D*, const S*, int64_t);
KDGRID_INSTANTIATE_REF_CONVERT(float, float)
KDGRID_INSTANTIATE_REF_CONVERT(float, bf16)
KDGRID_INSTANTIATE_REF_CONVERT(float, f16)
KDGRID_INSTANTIATE_REF_CONVERT(bf16, float)
KDGRID_INSTANTIATE_REF_CONVERT(bf16, bf16)
KDGRID_INSTANTIATE_REF_CONVERT(bf16, f16)
KDGRID_INSTANTIATE_REF_CONVERT(f16, float)
KDGRID_INSTANTIATE_REF_CONVERT(f16, bf16)
KDGRID_INSTANTIATE_REF_CONVERT(f16, f16)
#undef KDGRID_INSTANTIATE_REF_CONVERT

}  // namespace kdgrid::cpu::ref
