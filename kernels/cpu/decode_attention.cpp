// Decode attention on CPU: per (sequence, head) the query is scaled into an fp32 row padded
// to a multiple of 16 with zeros, each attended key row is converted into a zero-padded fp32
// row and dotted with it (16-lane vectors), the score row is padded with -inf to a multiple of
// 16 and softmaxed exactly, and the value rows are accumulated weighted by their
// probabilities. One query row is memory-bound (each cached element is read once), so no
// tiling beyond the 16-lane vectors.
#include "kernels/cpu/decode_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/cpu/simd.h"
#include "src/core/check.h"
#include "src/core/dtype.h"

namespace kdgrid::cpu {
namespace {

using simd::kLanes;
using simd::load16;
using simd::store16;
using simd::Vec16f;

// Below this many multiply-adds (pairs * keys * hd, about 2 us of work) one thread does
// everything: the OpenMP fork would cost more than it saves.
constexpr int64_t kMinParallelWork = 1 << 15;

int64_t roundUp(int64_t x, int64_t m) {
  return (x + m - 1) / m * m;
}

void checkDims(int64_t batch, int64_t channels, int64_t head_dim, int64_t max_seq) {
  KDGRID_CHECK(batch >= 0 && max_seq >= 0, "decode attention: batch {} and max_seq {} must be >= 0",
               batch, max_seq);
  KDGRID_CHECK(head_dim > 0 && channels > 0 && channels % head_dim == 0,
               "decode attention: channels {} must be a positive multiple of head_dim {}",
               channels, head_dim);
}

// One (sequence, head): scratch holds 3 * hdp + roundUp(n, 16) floats.
template <typename T>
void decodeHead(T* out, const T* q, const T* k, const T* v, int64_t first, int64_t len,
                int64_t hd, float* scratch) {
  const int64_t hdp = roundUp(hd, kLanes);
  const int64_t n = len - first, npad = roundUp(n, kLanes);
  float* qf = scratch;      // [hdp] scaled query
  float* row = qf + hdp;    // [hdp] one key or value row in fp32
  float* acc = row + hdp;   // [hdp] sum of p_j v_j
  float* s = acc + hdp;     // [npad] scores, then unnormalised probabilities
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  simd::loadRow(qf, q, hd);
  for (int64_t c = 0; c < hd; ++c) qf[c] *= scale;
  std::fill(qf + hd, qf + hdp, 0.0f);
  std::fill(row + hd, row + hdp, 0.0f);  // padding columns stay 0 for every row loaded
  for (int64_t j = 0; j < n; ++j) {
    simd::loadRow(row, k + (first + j) * hd, hd);
    Vec16f dot = Vec16f{};
    for (int64_t c = 0; c < hdp; c += kLanes) dot += load16(qf + c) * load16(row + c);
    s[j] = simd::hsum16(dot);
  }
  std::fill(s + n, s + npad, -std::numeric_limits<float>::infinity());
  const float m = simd::max16n(s, npad);  // finite: n >= 1
  Vec16f vsum = Vec16f{};
  for (int64_t j = 0; j < npad; j += kLanes) {
    const Vec16f p = simd::expBounded16(load16(s + j) - m);
    store16(s + j, p);
    vsum += p;
  }
  const float inv_sum = 1.0f / simd::hsum16(vsum);
  std::fill(acc, acc + hdp, 0.0f);
  for (int64_t j = 0; j < n; ++j) {
    simd::loadRow(row, v + (first + j) * hd, hd);
    const Vec16f p = simd::splat16(s[j]);
    for (int64_t c = 0; c < hdp; c += kLanes) store16(acc + c, load16(acc + c) + p * load16(row + c));
  }
  for (int64_t c = 0; c < hd; ++c) acc[c] *= inv_sum;
  simd::storeRow(out, acc, hd);
}

}  // namespace

template <typename T>
void kvCacheWrite(T* k_cache, T* v_cache, const T* qkv, int64_t batch, int64_t n, int64_t pos0,
                  int64_t max_seq, int64_t channels, int64_t head_dim) {
  checkDims(batch, channels, head_dim, max_seq);
  KDGRID_CHECK(n >= 0 && pos0 >= 0 && pos0 + n <= max_seq,
               "kvCacheWrite: positions {}..{} outside a cache of {}", pos0, pos0 + n - 1, max_seq);
  const int64_t nh = channels / head_dim;
  const size_t row_bytes = static_cast<size_t>(head_dim) * sizeof(T);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < n; ++t) {
      const T* src = qkv + (b * n + t) * 3 * channels;
      for (int64_t h = 0; h < nh; ++h) {
        const int64_t dst = ((b * nh + h) * max_seq + pos0 + t) * head_dim;
        std::memcpy(k_cache + dst, src + channels + h * head_dim, row_bytes);
        std::memcpy(v_cache + dst, src + 2 * channels + h * head_dim, row_bytes);
      }
    }
}

template <typename T>
void decodeAttention(T* out, const T* qkv, const T* k_cache, const T* v_cache, int64_t batch,
                     int64_t len, int64_t max_seq, int64_t channels, int64_t head_dim,
                     int64_t window) {
  checkDims(batch, channels, head_dim, max_seq);
  KDGRID_CHECK(len >= 1 && len <= max_seq, "decodeAttention: length {} outside 1..{}", len,
               max_seq);
  KDGRID_CHECK(window >= 0, "decodeAttention: window {} must be >= 0", window);
  const int64_t nh = channels / head_dim;
  const int64_t first = window > 0 ? std::max<int64_t>(0, len - window) : 0;
  const int64_t hdp = roundUp(head_dim, kLanes);
  const int64_t scratch_floats = 3 * hdp + roundUp(len - first, kLanes);
  const int64_t pairs = batch * nh;
#pragma omp parallel if (pairs > 1 && pairs * (len - first) * head_dim >= kMinParallelWork)
  {
    std::vector<float> scratch(scratch_floats);
#pragma omp for schedule(static)
    for (int64_t bh = 0; bh < pairs; ++bh) {
      const int64_t b = bh / nh, h = bh % nh;
      const int64_t head = bh * max_seq * head_dim;  // (b * nh + h) * S * hd
      decodeHead(out + b * channels + h * head_dim, qkv + b * 3 * channels + h * head_dim,
                 k_cache + head, v_cache + head, first, len, head_dim, scratch.data());
    }
  }
}

#define KDGRID_INSTANTIATE(T)                                                                 \
  template void kvCacheWrite<T>(T*, T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t, \
                                int64_t);                                                     \
  template void decodeAttention<T>(T*, const T*, const T*, const T*, int64_t, int64_t, int64_t, \
                                   int64_t, int64_t, int64_t);
KDGRID_INSTANTIATE(float)
KDGRID_INSTANTIATE(bf16)
KDGRID_INSTANTIATE(f16)
#undef KDGRID_INSTANTIATE

}  // namespace kdgrid::cpu
