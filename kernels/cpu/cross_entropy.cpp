// Vocabulary-parallel cross-entropy. One thread per row range; within a row the max and the
// exp-sum are two sweeps over the row, the second from cache (a 4096-column row is 16 KiB), so
// the forward reads the logits from memory once and the backward reads and writes them once.
#include "kernels/cpu/cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cpu/simd.h"
#include "src/core/check.h"

namespace kdgrid::cpu {
namespace {

using simd::kLanes;
using simd::load16;
using simd::splat16;
using simd::store16;
using simd::Vec16f;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
// Below this many logits the OpenMP fork costs more than the work.
constexpr int64_t kParallelMinElements = 1 << 15;
// Rows handed to a thread at a time: dynamic scheduling keeps both cores busy when one is
// slowed by another process; a 4096-column row takes ~1 us, so a chunk amortises the hand-out.
constexpr int kRowsPerChunk = 16;

// Number of non-padding local columns.
int64_t validColumns(const VocabSlice& s) {
  return std::clamp<int64_t>(s.valid - s.start, 0, s.size);
}

void checkSlice(const VocabSlice& s, int64_t rows) {
  KDGRID_CHECK(rows >= 0 && s.start >= 0 && s.size >= 0 && s.valid > 0,
               "cross-entropy: bad vocabulary slice (rows {}, start {}, size {}, valid {})", rows,
               s.start, s.size, s.valid);
}

// Elements [0, n) of a partial vector (n < 16); the other lanes `fill`.
Vec16f loadPartial(const float* p, int64_t n, float fill) {
  alignas(64) float buf[kLanes];
  for (int64_t i = 0; i < kLanes; ++i) buf[i] = i < n ? p[i] : fill;
  return load16(buf);
}

float rowMax(const float* row, int64_t n) {
  const int64_t full = n / kLanes * kLanes;
  float m = simd::max16n(row, full);
  if (full < n) m = std::max(m, simd::hmax16(loadPartial(row + full, n - full, kNegInf)));
  return m;
}

// sum_c exp(row[c] - m), c < n. Meanwhile prefetches next[0, n) (the next row, or nullptr):
// the max sweep over a row waits on memory and the exp sweep on arithmetic, so fetching the
// next row during the exp sweep overlaps the two.
float rowSumExp(const float* row, int64_t n, float m, const float* next) {
  Vec16f vsum = Vec16f{};
  int64_t c = 0;
  for (; c + kLanes <= n; c += kLanes) {
    if (next) __builtin_prefetch(next + c);
    vsum += simd::expBounded16(load16(row + c) - m);
  }
  if (c < n) vsum += simd::expBounded16(loadPartial(row + c, n - c, kNegInf) - m);
  return simd::hsum16(vsum);
}

bool isIgnored(uint32_t t) {
  return t == kXentIgnore;
}

}  // namespace

void xentRowStats(float* local_max, float* local_sum, float* target_logit, const float* logits,
                  const uint32_t* targets, int64_t rows, const VocabSlice& slice) {
  checkSlice(slice, rows);
  for (int64_t r = 0; r < rows; ++r)
    KDGRID_CHECK(isIgnored(targets[r]) || targets[r] < slice.valid,
                 "cross-entropy: target {} of row {} is not below the vocabulary size {}",
                 targets[r], r, slice.valid);
  const int64_t nv = validColumns(slice);
#pragma omp parallel for schedule(dynamic, kRowsPerChunk) if (rows * nv >= kParallelMinElements)
  for (int64_t r = 0; r < rows; ++r) {
    const uint32_t t = targets[r];
    if (isIgnored(t)) {
      local_max[r] = local_sum[r] = target_logit[r] = 0.0f;
      continue;
    }
    const float* row = logits + r * slice.size;
    const float m = rowMax(row, nv);
    local_max[r] = m;
    const float* next = r + 1 < rows ? row + slice.size : nullptr;
    local_sum[r] = nv > 0 ? rowSumExp(row, nv, m, next) : 0.0f;
    const int64_t c = static_cast<int64_t>(t) - slice.start;
    target_logit[r] = c >= 0 && c < nv ? row[c] : 0.0f;
  }
}

void xentRescaleSums(float* sums, const float* local_max, const float* global_max, int64_t rows) {
  // A rank holding only padding has sum 0 and max -inf: exp(-inf - M) = 0 keeps it 0 (M is
  // finite: some rank holds id 0, and ignored rows have max 0 everywhere).
  for (int64_t r = 0; r < rows; ++r) sums[r] *= std::exp(local_max[r] - global_max[r]);
}

void xentLoss(float* loss, const float* global_max, const float* global_sum,
              const float* target_logit, const uint32_t* targets, int64_t rows) {
  for (int64_t r = 0; r < rows; ++r) {
    // In double: log S, M and Z are each up to ~1e2 and the loss can be ~1e-3 (cancellation).
    loss[r] = isIgnored(targets[r])
                  ? 0.0f
                  : static_cast<float>(std::log(double(global_sum[r])) + double(global_max[r]) -
                                       double(target_logit[r]));
  }
}

void xentBackwardInPlace(float* logits, const float* global_max, const float* global_sum,
                         const uint32_t* targets, int64_t rows, const VocabSlice& slice,
                         float row_scale) {
  checkSlice(slice, rows);
  const int64_t nv = validColumns(slice);
#pragma omp parallel for schedule(dynamic, \
                                  kRowsPerChunk) if (rows * slice.size >= kParallelMinElements)
  for (int64_t r = 0; r < rows; ++r) {
    float* row = logits + r * slice.size;
    const uint32_t t = targets[r];
    if (isIgnored(t)) {
      std::fill(row, row + slice.size, 0.0f);
      continue;
    }
    const float m = global_max[r];
    const float k = row_scale / global_sum[r];  // softmax = exp(l - m) / S
    int64_t c = 0;
    for (; c + kLanes <= nv; c += kLanes)
      store16(row + c, simd::expBounded16(load16(row + c) - m) * k);
    if (c < nv) {
      alignas(64) float buf[kLanes];
      store16(buf, simd::expBounded16(loadPartial(row + c, nv - c, kNegInf) - m) * k);
      std::copy(buf, buf + (nv - c), row + c);
    }
    std::fill(row + nv, row + slice.size, 0.0f);
    const int64_t tc = static_cast<int64_t>(t) - slice.start;
    if (tc >= 0 && tc < nv) row[tc] -= row_scale;
  }
}

}  // namespace kdgrid::cpu
