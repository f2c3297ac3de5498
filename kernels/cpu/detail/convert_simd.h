// Internal: vectorised conversions between fp32 and the storage types of src/core/dtype.h,
// bit-identical to bf16(float) / f16(float) / float(bf16) / float(f16) there (RNE, NaN kept
// quiet NaN, denormals kept). Used by every op family to load a chunk of T into an fp32
// scratch buffer, compute in fp32, and store back.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
// GCC 12's AVX-512 headers trip -Wmaybe-uninitialized on their own _mm512_undefined_*()
// placeholders (GCC bug 105593, fixed in 12.3); the warning points into the header.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#define KDGRID_CPU_AVX512 1
#endif

#include "kernels/cpu/detail/parallel.h"
#include "src/core/dtype.h"

namespace kdgrid::cpu::detail {

// Elements per chunk for kernels that stage a run of T values through fp32 scratch on the
// stack (4 KiB of floats: stays in L1 next to the operands).
inline constexpr int64_t kChunk = 1024;

// Calls body(offset, length) for the consecutive kChunk-element chunks of [0, n), in parallel
// when n is large (each chunk is independent; the result does not depend on the threads).
template <typename Body>
void forEachChunk(int64_t n, Body&& body) {
  const int64_t chunks = ceilDiv(n, kChunk);
#pragma omp parallel for schedule(static) if (worthParallel(n))
  for (int64_t k = 0; k < chunks; ++k) {
    const int64_t off = k * kChunk;
    body(off, off + kChunk < n ? kChunk : n - off);
  }
}

#ifdef KDGRID_CPU_AVX512
// Lanes [0, n) of a 16-lane mask, n in [0, 16].
inline __mmask16 tailMask(int64_t n) {
  return static_cast<__mmask16>((1u << n) - 1u);
}

// 16 x fp32 -> 16 x bf16 bits, rounded as dtype.h's bf16 does.
inline __m256i f32ToBf16x16(__m512 v) {
#ifdef __AVX512BF16__
  // VCVTNEPS2BF16 rounds to nearest even and quiets NaNs like dtype.h, but flushes denormal
  // inputs to (signed) zero; those lanes are redone with the integer rounding below.
  __m256bh hw = _mm512_cvtneps_pbh(v);
  __m256i out = (__m256i)hw;
  const __m512i u = _mm512_castps_si512(v);
  const __m512i exponent = _mm512_and_si512(u, _mm512_set1_epi32(0x7f800000));
  const __m512i mantissa = _mm512_and_si512(u, _mm512_set1_epi32(0x007fffff));
  const __mmask16 denormal = _mm512_cmpeq_epi32_mask(exponent, _mm512_setzero_si512()) &
                             _mm512_test_epi32_mask(mantissa, mantissa);
  if (denormal != 0) [[unlikely]] {
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    const __m512i rounded = _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff)));
    const __m256i sw = _mm512_cvtepi32_epi16(_mm512_srli_epi32(rounded, 16));
    out = _mm256_mask_blend_epi16(denormal, out, sw);
  }
  return out;
#else
  // Integer rounding for every lane; NaN lanes take the truncated payload with the quiet bit.
  const __m512i u = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  const __m512i rounded = _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff)));
  const __m512i quiet = _mm512_or_si512(u, _mm512_set1_epi32(0x00400000));
  const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  const __m512i bits = _mm512_mask_blend_epi32(nan, rounded, quiet);
  return _mm512_cvtepi32_epi16(_mm512_srli_epi32(bits, 16));
#endif
}

inline __m512 bf16x16ToF32(__m256i h) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
#endif  // KDGRID_CPU_AVX512

// dst[i] = float(src[i]) for i in [0, n).
inline void toF32(float* dst, const float* src, int64_t n) {
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}

inline void toF32(float* dst, const bf16* src, int64_t n) {
  int64_t i = 0;
#ifdef KDGRID_CPU_AVX512
  for (; i + 16 <= n; i += 16) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i));
    _mm512_storeu_ps(dst + i, bf16x16ToF32(h));
  }
  if (i < n) {
    const __mmask16 m = tailMask(n - i);
    const __m256i h = _mm256_maskz_loadu_epi16(m, src + i);
    _mm512_mask_storeu_ps(dst + i, m, bf16x16ToF32(h));
  }
#else
  for (; i < n; ++i) dst[i] = static_cast<float>(src[i]);
#endif
}

inline void toF32(float* dst, const f16* src, int64_t n) {
  int64_t i = 0;
#ifdef KDGRID_CPU_AVX512
  for (; i + 16 <= n; i += 16) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i));
    _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(h));
  }
  if (i < n) {
    const __mmask16 m = tailMask(n - i);
    const __m256i h = _mm256_maskz_loadu_epi16(m, src + i);
    _mm512_mask_storeu_ps(dst + i, m, _mm512_cvtph_ps(h));
  }
#else
  for (; i < n; ++i) dst[i] = static_cast<float>(src[i]);
#endif
}

// dst[i] = T(src[i]) for i in [0, n).
inline void fromF32(float* dst, const float* src, int64_t n) {
  std::memmove(dst, src, static_cast<size_t>(n) * sizeof(float));
}

inline void fromF32(bf16* dst, const float* src, int64_t n) {
  int64_t i = 0;
#ifdef KDGRID_CPU_AVX512
  for (; i + 16 <= n; i += 16) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i),
                        f32ToBf16x16(_mm512_loadu_ps(src + i)));
  }
  if (i < n) {
    const __mmask16 m = tailMask(n - i);
    _mm256_mask_storeu_epi16(dst + i, m, f32ToBf16x16(_mm512_maskz_loadu_ps(m, src + i)));
  }
#else
  for (; i < n; ++i) dst[i] = bf16(src[i]);
#endif
}

inline void fromF32(f16* dst, const float* src, int64_t n) {
  int64_t i = 0;
#ifdef KDGRID_CPU_AVX512
  // _MM_FROUND_CUR_DIRECTION: the MXCSR rounding mode, as the scalar _Float16 cast uses.
  for (; i + 16 <= n; i += 16) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i),
                        _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_CUR_DIRECTION));
  }
  if (i < n) {
    const __mmask16 m = tailMask(n - i);
    _mm256_mask_storeu_epi16(
        dst + i, m, _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, src + i), _MM_FROUND_CUR_DIRECTION));
  }
#else
  for (; i < n; ++i) dst[i] = f16(src[i]);
#endif
}

// A read-only fp32 view of src[0, n): src itself when T is float, else `scratch` filled.
template <typename T>
inline const float* loadF32(const T* src, int64_t n, float* scratch) {
  if constexpr (std::is_same_v<T, float>) {
    return src;
  } else {
    toF32(scratch, src, n);
    return scratch;
  }
}

// Where to compute an fp32 result destined for dst[0, n): dst itself when T is float, else
// `scratch` (then call storeF32 to write it out).
template <typename T>
inline float* outF32(T* dst, float* scratch) {
  if constexpr (std::is_same_v<T, float>) {
    return dst;
  } else {
    return scratch;
  }
}

template <typename T>
inline void storeF32(T* dst, const float* computed, int64_t n) {
  if constexpr (!std::is_same_v<T, float>) fromF32(dst, computed, n);
}

}  // namespace kdgrid::cpu::detail
