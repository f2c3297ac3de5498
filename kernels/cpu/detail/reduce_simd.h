// Internal: fp32 row reductions with several independent accumulators. A single vector
// accumulator (what `omp simd reduction` gives) makes a row of a few hundred floats wait on
// the add latency chain; four 16-lane accumulators hide it.
#pragma once

#include <cstdint>

#include "kernels/cpu/detail/convert_simd.h"

namespace kdgrid::cpu::detail {

// sum_{i in [0, n)} (x[i] - shift). With shift = a sample of the row (LayerNorm uses x[0]),
// the addends are deviations of the size of the row's spread, so a row far from zero (mean
// 50, spread 1) sums without losing the low bits to the large common part.
inline float sumDeviationF32(const float* x, float shift, int64_t n) {
#ifdef KDGRID_CPU_AVX512
  const __m512 s = _mm512_set1_ps(shift);
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    a0 = _mm512_add_ps(a0, _mm512_sub_ps(_mm512_loadu_ps(x + i), s));
    a1 = _mm512_add_ps(a1, _mm512_sub_ps(_mm512_loadu_ps(x + i + 16), s));
    a2 = _mm512_add_ps(a2, _mm512_sub_ps(_mm512_loadu_ps(x + i + 32), s));
    a3 = _mm512_add_ps(a3, _mm512_sub_ps(_mm512_loadu_ps(x + i + 48), s));
  }
  for (; i + 16 <= n; i += 16) a0 = _mm512_add_ps(a0, _mm512_sub_ps(_mm512_loadu_ps(x + i), s));
  if (i < n) {
    // Lanes past the end must contribute 0, not -shift.
    const __mmask16 t = tailMask(n - i);
    a1 = _mm512_add_ps(a1, _mm512_maskz_sub_ps(t, _mm512_maskz_loadu_ps(t, x + i), s));
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
#else
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) sum += x[i] - shift;
  return sum;
#endif
}

// sum_{i in [0, n)} (x[i] - mu)^2.
inline float sumSquaredDeviationF32(const float* x, float mu, int64_t n) {
#ifdef KDGRID_CPU_AVX512
  const __m512 m = _mm512_set1_ps(mu);
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(x + i), m);
    const __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(x + i + 16), m);
    const __m512 d2 = _mm512_sub_ps(_mm512_loadu_ps(x + i + 32), m);
    const __m512 d3 = _mm512_sub_ps(_mm512_loadu_ps(x + i + 48), m);
    a0 = _mm512_fmadd_ps(d0, d0, a0);
    a1 = _mm512_fmadd_ps(d1, d1, a1);
    a2 = _mm512_fmadd_ps(d2, d2, a2);
    a3 = _mm512_fmadd_ps(d3, d3, a3);
  }
  for (; i + 16 <= n; i += 16) {
    const __m512 d = _mm512_sub_ps(_mm512_loadu_ps(x + i), m);
    a0 = _mm512_fmadd_ps(d, d, a0);
  }
  if (i < n) {
    // Lanes past the end must contribute 0, not mu^2.
    const __mmask16 t = tailMask(n - i);
    const __m512 d = _mm512_maskz_sub_ps(t, _mm512_maskz_loadu_ps(t, x + i), m);
    a1 = _mm512_fmadd_ps(d, d, a1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
#else
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += (x[i] - mu) * (x[i] - mu);
  return s;
#endif
}

}  // namespace kdgrid::cpu::detail
