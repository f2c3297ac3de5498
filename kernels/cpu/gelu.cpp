#include "kernels/cpu/gelu.h"

#include <bit>
#include <cmath>
#include <cstdint>

#include "kernels/cpu/detail/convert_simd.h"
#include "kernels/cpu/detail/parallel.h"
#include "src/core/dtype.h"

namespace kdgrid::cpu {

namespace {

constexpr float kSqrt2OverPi = 0.7978845608028654f;  // sqrt(2 / pi)
constexpr float kCubic = 0.044715f;

// a * b + c, fused where the ISA has FMA (the build is ISO C++, so GCC does not contract).
inline float mulAdd(float a, float b, float c) {
#ifdef __FMA__
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}

// e^x with about 1 ulp error on [-87, 88]; x is clamped to that range (so the result is a
// normal float in [e^-87, e^88], never 0 or inf), NaN stays NaN. Branch-free, no library
// call, so `omp simd` loops that use it vectorise. Range reduction x = n ln2 + r with
// |r| <= ln2 / 2 (ln2 split in two so n * hi is exact), then the Cephes expf polynomial.
inline float expClamped(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float n = (x * kLog2e + kRound) - kRound;
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = mulAdd(p, r, 1.3981999507e-3f);
  p = mulAdd(p, r, 8.3334519073e-3f);
  p = mulAdd(p, r, 4.1665795894e-2f);
  p = mulAdd(p, r, 1.6666665459e-1f);
  p = mulAdd(p, r, 5.0000001201e-1f);
  p = mulAdd(p, r * r, r) + 1.0f;
  // n in [-126, 127] after the clamp: 2^n is a normal float built from its exponent bits.
  const float scale = std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
  return p * scale;
}

// 0.5 * (1 + tanh(u)) = 1 / (1 + e^(-2u)): no tanh needed, and x / (1 + e) keeps full
// relative accuracy where gelu(x) is tiny.
inline float geluValue(float x) {
  const float u = kSqrt2OverPi * (x + kCubic * x * x * x);
  return x / (1.0f + expClamped(-2.0f * u));
}

// gelu'(x) = s + 2 x s (1 - s) sqrt(2/pi) (1 + 3 * 0.044715 x^2), s = 1 / (1 + e^(-2u));
// 1 - s is formed as e * s to avoid cancellation when s is close to 1.
inline float geluDerivative(float x) {
  const float u = kSqrt2OverPi * (x + kCubic * x * x * x);
  const float e = expClamped(-2.0f * u);
  const float s = 1.0f / (1.0f + e);
  return s + 2.0f * x * s * (e * s) * kSqrt2OverPi * (1.0f + 3.0f * kCubic * x * x);
}

// gelu(x) (as geluValue) and gelu'(x) (as geluDerivative) from one exponential; the same
// operations in the same order, so both results are bit-identical to those functions'.
inline void geluValueAndDerivative(float x, float* value, float* derivative) {
  const float u = kSqrt2OverPi * (x + kCubic * x * x * x);
  const float e = expClamped(-2.0f * u);
  const float s = 1.0f / (1.0f + e);
  *value = x / (1.0f + e);
  *derivative = s + 2.0f * x * s * (e * s) * kSqrt2OverPi * (1.0f + 3.0f * kCubic * x * x);
}

}  // namespace

template <typename T>
void geluForward(T* out, const T* x, int64_t n) {
  detail::forEachChunk(n, [=](int64_t off, int64_t len) {
    float x_buf[detail::kChunk];
    float out_buf[detail::kChunk];
    const float* xf = detail::loadF32(x + off, len, x_buf);
    float* o = detail::outF32(out + off, out_buf);
#pragma omp simd
    for (int64_t i = 0; i < len; ++i) o[i] = geluValue(xf[i]);
    detail::storeF32(out + off, o, len);
  });
}

template <typename T>
void geluBackward(T* dx, const T* dout, const T* x, int64_t n) {
  detail::forEachChunk(n, [=](int64_t off, int64_t len) {
    float x_buf[detail::kChunk];
    float d_buf[detail::kChunk];
    const float* xf = detail::loadF32(x + off, len, x_buf);
    const float* df = detail::loadF32(dout + off, len, d_buf);
    // d_buf is free to hold the result: each lane reads df[i] before writing o[i].
    float* o = detail::outF32(dx + off, d_buf);
#pragma omp simd
    for (int64_t i = 0; i < len; ++i) o[i] = df[i] * geluDerivative(xf[i]);
    detail::storeF32(dx + off, o, len);
  });
}

template <typename T>
void geluForwardWithDerivative(T* out, T* deriv, const T* x, int64_t n) {
  detail::forEachChunk(n, [=](int64_t off, int64_t len) {
    float x_buf[detail::kChunk];
    float out_buf[detail::kChunk];
    float d_buf[detail::kChunk];
    const float* xf = detail::loadF32(x + off, len, x_buf);
    float* o = detail::outF32(out + off, out_buf);
    // fp32: d writes deriv directly; with deriv == x each lane reads xf[i] before writing d[i].
    float* d = detail::outF32(deriv + off, d_buf);
#pragma omp simd
    for (int64_t i = 0; i < len; ++i) geluValueAndDerivative(xf[i], &o[i], &d[i]);
    detail::storeF32(out + off, o, len);
    detail::storeF32(deriv + off, d, len);
  });
}

template <typename T>
void geluBackwardFromDerivative(T* dx, const T* dout, const T* deriv, int64_t n) {
  detail::forEachChunk(n, [=](int64_t off, int64_t len) {
    float g_buf[detail::kChunk];
    float d_buf[detail::kChunk];
    const float* gf = detail::loadF32(deriv + off, len, g_buf);
    const float* df = detail::loadF32(dout + off, len, d_buf);
    float* o = detail::outF32(dx + off, d_buf);
#pragma omp simd
    for (int64_t i = 0; i < len; ++i) o[i] = df[i] * gf[i];
    detail::storeF32(dx + off, o, len);
  });
}

#define KDGRID_INSTANTIATE_GELU(T)                                            \
  template void geluForward<T>(T*, const T*, int64_t);                        \
  template void geluBackward<T>(T*, const T*, const T*, int64_t);             \
  template void geluForwardWithDerivative<T>(T*, T*, const T*, int64_t);      \
  template void geluBackwardFromDerivative<T>(T*, const T*, const T*, int64_t);
KDGRID_INSTANTIATE_GELU(float)
KDGRID_INSTANTIATE_GELU(bf16)
KDGRID_INSTANTIATE_GELU(f16)
#undef KDGRID_INSTANTIATE_GELU

}  // namespace kdgrid::cpu
