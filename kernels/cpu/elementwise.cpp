#include "kernels/cpu/elementwise.h"

#include <cstring>
#include <memory>
#include <type_traits>

#include "kernels/cpu/detail/convert_simd.h"
#include "kernels/cpu/detail/parallel.h"
#include "src/core/dtype.h"

namespace kdgrid::cpu {

namespace {

using detail::forEachChunk;

}  // namespace

template <typename T>
void residualAdd(T* out, const T* a, const T* b, int64_t n) {
  forEachChunk(n, [=](int64_t off, int64_t len) {
    float a_buf[detail::kChunk];
    float b_buf[detail::kChunk];
    const float* af = detail::loadF32(a + off, len, a_buf);
    const float* bf = detail::loadF32(b + off, len, b_buf);
    // a_buf may take the result: each lane reads af[i] before writing o[i].
    float* o = detail::outF32(out + off, a_buf);
#pragma omp simd
    for (int64_t i = 0; i < len; ++i) o[i] = af[i] + bf[i];
    detail::storeF32(out + off, o, len);
  });
}

template <typename T>
void addBias(T* y, const float* b, int64_t rows, int64_t cols) {
  const int64_t chunks_per_row = detail::ceilDiv(cols, detail::kChunk);
  const int64_t tasks = rows * chunks_per_row;  // (row, column chunk) pairs
#pragma omp parallel for schedule(static) if (detail::worthParallel(rows * cols))
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t r = task / chunks_per_row;
    const int64_t c0 = (task % chunks_per_row) * detail::kChunk;
    const int64_t len = c0 + detail::kChunk < cols ? detail::kChunk : cols - c0;
    T* row = y + r * cols + c0;
    const float* bias = b + c0;
    float buf[detail::kChunk];
    const float* yf = detail::loadF32(row, len, buf);
    // buf may take the result: each lane reads yf[c] before writing o[c].
    float* o = detail::outF32(row, buf);
#pragma omp simd
    for (int64_t c = 0; c < len; ++c) o[c] = yf[c] + bias[c];
    detail::storeF32(row, o, len);
  }
}

template <typename Dst, typename Src>
void convertBuffer(Dst* dst, const Src* src, int64_t n) {
  if constexpr (std::is_same_v<Dst, Src>) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(Dst));
  } else if constexpr (std::is_same_v<Src, float>) {
    forEachChunk(n, [=](int64_t off, int64_t len) { detail::fromF32(dst + off, src + off, len); });
  } else if constexpr (std::is_same_v<Dst, float>) {
    forEachChunk(n, [=](int64_t off, int64_t len) { detail::toF32(dst + off, src + off, len); });
  } else {
    forEachChunk(n, [=](int64_t off, int64_t len) {
      float buf[detail::kChunk];
      detail::toF32(buf, src + off, len);
      detail::fromF32(dst + off, buf, len);
    });
  }
}

template <typename T>
void scaleInPlace(T* x, float scale, int64_t n) {
  forEachChunk(n, [=](int64_t off, int64_t len) {
    float buf[detail::kChunk];
    const float* xf = detail::loadF32(x + off, len, buf);
    float* o = detail::outF32(x + off, buf);
#pragma omp simd
    for (int64_t i = 0; i < len; ++i) o[i] = xf[i] * scale;
    detail::storeF32(x + off, o, len);
  });
}

template <typename T>
void zeroFill(T* x, int64_t n) {
  // +0.0 is all-zero bits in fp32, bf16 and fp16.
  forEachChunk(n, [=](int64_t off, int64_t len) {
    std::memset(static_cast<void*>(x + off), 0, static_cast<size_t>(len) * sizeof(T));
  });
}

template <typename T>
void biasGradColumnSum(float* db, const T* dy, int64_t rows, int64_t cols) {
  // Rows per partial: fixed (thread-count independent) and large enough that the partials
  // are a small fraction of dy's traffic.
  constexpr int64_t kRowsPerBlock = 64;
  const int64_t blocks = detail::ceilDiv(rows, kRowsPerBlock);
  std::unique_ptr<float[]> partial(new float[static_cast<size_t>(blocks * cols)]);
#pragma omp parallel for schedule(static) if (detail::worthParallel(rows * cols))
  for (int64_t b = 0; b < blocks; ++b) {
    float* acc = partial.get() + b * cols;
    const int64_t row_end = (b + 1) * kRowsPerBlock < rows ? (b + 1) * kRowsPerBlock : rows;
    for (int64_t c0 = 0; c0 < cols; c0 += detail::kChunk) {
      const int64_t width = c0 + detail::kChunk < cols ? detail::kChunk : cols - c0;
      float buf[detail::kChunk];
      for (int64_t c = 0; c < width; ++c) acc[c0 + c] = 0.0f;
      for (int64_t r = b * kRowsPerBlock; r < row_end; ++r) {
        const float* row = detail::loadF32(dy + r * cols + c0, width, buf);
#pragma omp simd
        for (int64_t c = 0; c < width; ++c) acc[c0 + c] += row[c];
      }
    }
  }
  detail::addBlockPartials(db, partial.get(), blocks, cols);
}

#define KDGRID_INSTANTIATE_ELEMENTWISE(T)                        \
  template void residualAdd<T>(T*, const T*, const T*, int64_t); \
  template void addBias<T>(T*, const float*, int64_t, int64_t);  \
  template void scaleInPlace<T>(T*, float, int64_t);             \
  template void zeroFill<T>(T*, int64_t);                        \
  template void biasGradColumnSum<T>(float*, const T*, int64_t, int64_t);
KDGRID_INSTANTIATE_ELEMENTWISE(float)
KDGRID_INSTANTIATE_ELEMENTWISE(bf16)
KDGRID_INSTANTIATE_ELEMENTWISE(f16)
#undef KDGRID_INSTANTIATE_ELEMENTWISE

#define KDGRID_INSTANTIATE_CONVERT(D, S) template void convertBuffer<D, S>(D*, const S*, int64_t);
KDGRID_INSTANTIATE_CONVERT(float, float)
KDGRID_INSTANTIATE_CONVERT(float, bf16)
KDGRID_INSTANTIATE_CONVERT(float, f16)
KDGRID_INSTANTIATE_CONVERT(bf16, float)
KDGRID_INSTANTIATE_CONVERT(bf16, bf16)
KDGRID_INSTANTIATE_CONVERT(bf16, f16)
KDGRID_INSTANTIATE_CONVERT(f16, float)
KDGRID_INSTANTIATE_CONVERT(f16, bf16)
KDGRID_INSTANTIATE_CONVERT(f16, f16)
#undef KDGRID_INSTANTIATE_CONVERT

}  // namespace kdgrid::cpu
