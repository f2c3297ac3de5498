// Internal: when to fork OpenMP threads, and a deterministic way to sum per-block partials.
//
// Reductions over rows (parameter gradients, column sums, sums of squares) split the rows
// into blocks of a FIXED size, give each block its own partial, and add the partials in block
// order. The result therefore depends on the shape only, never on the thread count or the
// schedule, so runs with different OMP_NUM_THREADS (and different grids) agree bit for bit.
#pragma once

#include <cstdint>

namespace kdgrid::cpu::detail {

// Below this many elements of work a kernel runs on the calling thread: an OpenMP fork/join
// costs a few microseconds, about what 2 cores need to stream 64 Ki floats.
inline constexpr int64_t kParallelMinElements = 1 << 16;

inline bool worthParallel(int64_t elements) {
  return elements >= kParallelMinElements;
}

inline int64_t ceilDiv(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// dst[c] += sum_{b in [0, blocks)} partials[b * cols + c] for c in [0, cols): the partials
// are summed in block order first (fp32, like the partials), then added to dst once.
inline void addBlockPartials(float* dst, const float* partials, int64_t blocks, int64_t cols) {
  constexpr int64_t kCols = 256;
#pragma omp parallel for schedule(static) if (worthParallel(blocks * cols))
  for (int64_t c0 = 0; c0 < cols; c0 += kCols) {
    const int64_t width = c0 + kCols < cols ? kCols : cols - c0;
    float sum[kCols] = {};
    for (int64_t b = 0; b < blocks; ++b) {
      const float* p = partials + b * cols + c0;
#pragma omp simd
      for (int64_t c = 0; c < width; ++c) sum[c] += p[c];
    }
#pragma omp simd
    for (int64_t c = 0; c < width; ++c) dst[c0 + c] += sum[c];
  }
}

}  // namespace kdgrid::cpu::detail
