// Internal to kernels/cpu: a 16-lane fp32 vector (GCC/Clang vector extension: one zmm register
// under AVX-512, two ymm under AVX2, so the same source builds for any KDGRID_MARCH), an exp
// good to ~2 ulp, and row loads/stores that convert the activation storage type to fp32.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "kernels/cpu/detail/convert_simd.h"
#include "src/core/dtype.h"

namespace kdgrid::cpu::simd {

typedef float Vec16f __attribute__((vector_size(64)));
typedef int32_t Vec16i __attribute__((vector_size(64)));

inline constexpr int kLanes = 16;

// Unaligned load/store (memcpy compiles to one vmovups).
inline Vec16f load16(const float* p) {
  Vec16f v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store16(float* p, Vec16f v) {
  std::memcpy(p, &v, sizeof v);
}
inline Vec16f splat16(float s) {
  return Vec16f{} + s;
}

inline Vec16f max16(Vec16f a, Vec16f b) {
  return a > b ? a : b;
}

inline float hmax16(Vec16f v) {
  float m = v[0];
  for (int i = 1; i < kLanes; ++i) m = v[i] > m ? v[i] : m;
  return m;
}
inline float hsum16(Vec16f v) {
  float s = 0.0f;
  for (int i = 0; i < kLanes; ++i) s += v[i];
  return s;
}

// max(x[0, n)) for n a multiple of 16 (-inf for n = 0). Four independent accumulators: one
// compare-and-select chain would take its latency (~4 cycles) per 16 elements.
inline float max16n(const float* x, int64_t n) {
  Vec16f m0 = splat16(-std::numeric_limits<float>::infinity()), m1 = m0, m2 = m0, m3 = m0;
  int64_t c = 0;
  for (; c + 4 * kLanes <= n; c += 4 * kLanes) {
    m0 = max16(m0, load16(x + c));
    m1 = max16(m1, load16(x + c + kLanes));
    m2 = max16(m2, load16(x + c + 2 * kLanes));
    m3 = max16(m3, load16(x + c + 3 * kLanes));
  }
  for (; c < n; c += kLanes) m0 = max16(m0, load16(x + c));
  return hmax16(max16(max16(m0, m1), max16(m2, m3)));
}

// exp(x) per lane. x < -87.3365 (below the smallest normal result, -inf included) gives
// exactly 0, NaN stays NaN, exp(0) is exactly 1. Range reduction x = n ln2 + r with
// |r| <= ln2/2 (ln2 split in two so n*ln2 is exact), then Taylor to degree 7: truncation error
// |r|^8/8! < 6e-9 relative, below fp32 rounding; measured <= 1.3 ulp over [-87, 88].
// kFull: x > 88.7228 gives +inf and results up to FLT_MAX are exact. Without it (the softmax
// form: arguments x - max <= 0) x must be <= 88, which saves the overflow selects and one
// multiply.
template <bool kFull>
inline Vec16f expImpl(Vec16f x) {
  constexpr float kMin = -87.33654f;  // ln(2^-126)
  constexpr float kMax = 88.72283f;   // ln(FLT_MAX)
  constexpr float kLog2e = 1.44269504f;
  constexpr float kLn2Hi = 0.693145751953125f;  // 12 significant bits: n * kLn2Hi is exact
  constexpr float kLn2Lo = 1.42860682e-06f;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const Vec16i under = x < kMin;
  Vec16f xc = under ? splat16(kMin) : x;
  Vec16i over{};
  if constexpr (kFull) {
    over = x > kMax;
    xc = over ? splat16(kMax) : xc;
  }
  const Vec16f n = (xc * kLog2e + kRound) - kRound;
  Vec16f r = xc - n * kLn2Hi;
  r = r - n * kLn2Lo;
  Vec16f p = splat16(1.0f / 5040.0f);
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const Vec16i ni = __builtin_convertvector(n, Vec16i);
  Vec16f y;
  if constexpr (kFull) {
    // n in [-126, 128]: 2^n = 2^n1 * 2^n2 with both halves in [-63, 64], each built in the
    // exponent field, so the largest results (n = 128, p < 1) do not overflow on the way.
    const Vec16i n1 = ni >> 1;
    y = p * std::bit_cast<Vec16f>((n1 + 127) << 23);
    y = y * std::bit_cast<Vec16f>((ni - n1 + 127) << 23);
    y = over ? splat16(std::numeric_limits<float>::infinity()) : y;
  } else {
    y = p * std::bit_cast<Vec16f>((ni + 127) << 23);  // n in [-126, 127]
  }
  return under ? splat16(0.0f) : y;
}

inline Vec16f exp16(Vec16f x) {
  return expImpl<true>(x);
}
// For x <= 88 only (softmax arguments).
inline Vec16f expBounded16(Vec16f x) {
  return expImpl<false>(x);
}

// dst[0, n) = float(src[0, n)) (detail/convert_simd.h: AVX-512 conversions where built).
template <typename T>
inline void loadRow(float* dst, const T* src, int64_t n) {
  detail::toF32(dst, src, n);
}

// dst[0, n) = T(src[0, n)) (round to nearest even for bf16/f16, as src/core/dtype.h).
template <typename T>
inline void storeRow(T* dst, const float* src, int64_t n) {
  detail::fromF32(dst, src, n);
}

}  // namespace kdgrid::cpu::simd
