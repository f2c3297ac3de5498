#include "kernels/cpu/adamw.h"

#include <cmath>
#include <cstring>
#include <memory>

#include "kernels/cpu/detail/convert_simd.h"
#include "kernels/cpu/detail/parallel.h"
#include "src/core/dtype.h"

namespace kdgrid::cpu {

template <typename T>
void adamwStep(float* param, float* m, float* v, const float* grad, T* param_copy, int64_t n,
               const AdamWConfig& config, int64_t step, float grad_scale, bool apply_weight_decay) {
  const float b1 = config.beta1;
  const float b2 = config.beta2;
  const float one_minus_b1 = 1.0f - b1;
  const float one_minus_b2 = 1.0f - b2;
  // Bias corrections in double: beta^t for t in the tens of thousands underflows gracefully.
  const float inv_bias1 = static_cast<float>(
      1.0 / (1.0 - std::pow(static_cast<double>(b1), static_cast<double>(step))));
  const float inv_bias2 = static_cast<float>(
      1.0 / (1.0 - std::pow(static_cast<double>(b2), static_cast<double>(step))));
  const float lr = config.lr;
  const float eps = config.eps;
  const float wd = apply_weight_decay ? config.weight_decay : 0.0f;
  detail::forEachChunk(n, [=](int64_t off, int64_t len) {
    float* p = param + off;
    float* mk = m + off;
    float* vk = v + off;
    const float* gk = grad + off;
#pragma omp simd
    for (int64_t i = 0; i < len; ++i) {
      const float g = gk[i] * grad_scale;
      const float mi = b1 * mk[i] + one_minus_b1 * g;
      const float vi = b2 * vk[i] + one_minus_b2 * (g * g);
      mk[i] = mi;
      vk[i] = vi;
      const float update = (mi * inv_bias1) / (std::sqrt(vi * inv_bias2) + eps) + wd * p[i];
      p[i] = p[i] - lr * update;
    }
    if (param_copy) detail::fromF32(param_copy + off, p, len);
  });
}

double sumSquares(const float* x, int64_t n) {
  // Fixed blocks, one double partial each, added in block order (thread-count independent).
  constexpr int64_t kBlock = 1 << 14;
  const int64_t blocks = detail::ceilDiv(n, kBlock);
  std::unique_ptr<double[]> partial(new double[static_cast<size_t>(blocks)]);
#pragma omp parallel for schedule(static) if (detail::worthParallel(n))
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t off = b * kBlock;
    const int64_t len = off + kBlock < n ? kBlock : n - off;
    double acc = 0.0;
#pragma omp simd reduction(+ : acc)
    for (int64_t i = 0; i < len; ++i) acc += static_cast<double>(x[off + i]) * x[off + i];
    partial[b] = acc;
  }
  double total = 0.0;
  for (int64_t b = 0; b < blocks; ++b) total += partial[b];
  return total;
}

namespace {

// Exponent field all ones <=> inf or NaN, per storage format.
inline uint32_t nonFiniteBits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return (u & 0x7f800000u) == 0x7f800000u;
}
inline uint32_t nonFiniteBits(bf16 x) {
  return (x.bits & 0x7f80u) == 0x7f80u;
}
inline uint32_t nonFiniteBits(f16 x) {
  return (x.bits & 0x7c00u) == 0x7c00u;
}

}  // namespace

template <typename T>
bool allFinite(const T* x, int64_t n) {
  uint32_t bad = 0;
#pragma omp parallel for simd schedule(static) reduction(| : bad) if (detail::worthParallel(n))
  for (int64_t i = 0; i < n; ++i) bad |= nonFiniteBits(x[i]);
  return bad == 0;
}

#define KDGRID_INSTANTIATE_ADAMW(T)                                             \
  template void adamwStep<T>(float*, float*, float*, const float*, T*, int64_t, \
                             const AdamWConfig&, int64_t, float, bool);         \
  template bool allFinite<T>(const T*, int64_t);
KDGRID_INSTANTIATE_ADAMW(float)
KDGRID_INSTANTIATE_ADAMW(bf16)
KDGRID_INSTANTIATE_ADAMW(f16)
#undef KDGRID_INSTANTIATE_ADAMW

}  // namespace kdgrid::cpu
