// Causal (windowed) attention on CPU, flash-attention style: per (batch, head) the head's Q, K,
// V are gathered into fp32 scratch, then queries are processed in blocks of kBlockRows rows:
// scores for the block's key range only (masked blocks are skipped), an exact row softmax
// (the whole key range of a row is in the tile, so no online rescaling is needed), and the
// products with V. The backward recomputes the probabilities from lse.
//
// All products are small GEMMs C (=|+=) A B whose B and C rows are 16-float vectors and whose A
// entries are broadcast (gemmBroadcast): S = Qs Kt, O = P V, dP = dO Vt, dQ = dS K, and with A
// read transposed dV += P^T dO, dK += dS^T Qs. Head dims are padded to a multiple of 16 (hdp)
// and sequence lengths to a multiple of 16 (tpad) with zeros, so every vector access is in
// bounds and padding contributes exact zeros.
#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>

#include "kernels/cpu/simd.h"
#include "src/core/check.h"
#include "src/core/dtype.h"

namespace kdgrid::cpu {
namespace {

using simd::kLanes;
using simd::load16;
using simd::splat16;
using simd::store16;
using simd::Vec16f;

// Queries per block. The S / dP tiles are [kBlockRows, tpad]; a block computes the keys of all
// its rows (about kBlockRows/2 masked ones per row on the diagonal, W + kBlockRows + 15 keys per
// row with a window W). Measured with bench/attention_bench.cpp (T = 256, hd = 64, 1 thread):
// 16 and 32 equal for full causal, 16 ~15% faster at W = 64; 64 slower in the backward.
constexpr int64_t kBlockRows = 16;
// Register tile of the GEMM micro-kernel: kTileRows rows x up to 4 vectors of 16 columns
// (16 accumulators + 4 B vectors of the 32 AVX-512 registers).
constexpr int kTileRows = 4;
constexpr int kTileVecs = 4;

int64_t roundUp(int64_t x, int64_t m) {
  return (x + m - 1) / m * m;
}

// One thread's fp32 scratch, 64-byte aligned, uninitialised.
class Scratch {
 public:
  explicit Scratch(int64_t n)
      : p_(static_cast<float*>(
            ::operator new[](static_cast<size_t>(n) * sizeof(float), std::align_val_t(64)))) {}
  ~Scratch() { ::operator delete[](p_, std::align_val_t(64)); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  float* data() const { return p_; }

 private:
  float* p_;
};

// C[r, 0:16*NV] (=|+=) sum_k A(r, k) B[k, 0:16*NV] for r < R, with A(r, k) = a[r*a_rs + k*a_cs],
// B row k at b + k*ldb, C row r at c + r*ldc.
template <int R, int NV, bool kAccumulate>
inline void tile(int64_t kdim, const float* a, int64_t a_rs, int64_t a_cs, const float* b,
                 int64_t ldb, float* c, int64_t ldc) {
  Vec16f acc[R][NV];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = Vec16f{};
  for (int64_t k = 0; k < kdim; ++k) {
    const float* bk = b + k * ldb;
    Vec16f bv[NV];
    for (int v = 0; v < NV; ++v) {
      bv[v] = load16(bk + kLanes * v);
#ifdef __AVX512F__
      // Keep the B vectors in registers: folded into each row's FMA as a memory operand they
      // would be loaded R times, and the loads (not the FMAs) would bound the loop. Only with
      // AVX-512: elsewhere a 64-byte vector is two registers and fits no "v" operand.
      asm("" : "+v"(bv[v]));
#endif
    }
    const float* ak = a + k * a_cs;
    for (int r = 0; r < R; ++r) {
      const float s = ak[r * a_rs];
      for (int v = 0; v < NV; ++v) acc[r][v] += bv[v] * s;
    }
  }
  for (int r = 0; r < R; ++r) {
    float* cr = c + r * ldc;
    for (int v = 0; v < NV; ++v) {
      if constexpr (kAccumulate) acc[r][v] += load16(cr + kLanes * v);
      store16(cr + kLanes * v, acc[r][v]);
    }
  }
}

template <int R, bool kAccumulate>
inline void tileCols(int nv, int64_t kdim, const float* a, int64_t a_rs, int64_t a_cs,
                     const float* b, int64_t ldb, float* c, int64_t ldc) {
  switch (nv) {
    case 4:
      tile<R, 4, kAccumulate>(kdim, a, a_rs, a_cs, b, ldb, c, ldc);
      break;
    case 3:
      tile<R, 3, kAccumulate>(kdim, a, a_rs, a_cs, b, ldb, c, ldc);
      break;
    case 2:
      tile<R, 2, kAccumulate>(kdim, a, a_rs, a_cs, b, ldb, c, ldc);
      break;
    default:
      tile<R, 1, kAccumulate>(kdim, a, a_rs, a_cs, b, ldb, c, ldc);
      break;
  }
}

// C[m, n] (=|+=) A(m, k) B[k, n] with A(i, p) = a[i*a_rs + p*a_cs]; n a multiple of 16.
// Column panels of B (k x 64 floats) outside, row tiles inside, so a panel is reused from cache.
template <bool kAccumulate>
void gemmBroadcast(int64_t m, int64_t n, int64_t k, const float* a, int64_t a_rs, int64_t a_cs,
                   const float* b, int64_t ldb, float* c, int64_t ldc) {
  for (int64_t j = 0; j < n; j += kLanes * kTileVecs) {
    const int nv = static_cast<int>(std::min<int64_t>(kTileVecs, (n - j) / kLanes));
    int64_t i = 0;
    for (; i + kTileRows <= m; i += kTileRows)
      tileCols<kTileRows, kAccumulate>(nv, k, a + i * a_rs, a_rs, a_cs, b + j, ldb, c + i * ldc + j,
                                       ldc);
    const float* ai = a + i * a_rs;
    float* ci = c + i * ldc + j;
    switch (m - i) {
      case 3:
        tileCols<3, kAccumulate>(nv, k, ai, a_rs, a_cs, b + j, ldb, ci, ldc);
        break;
      case 2:
        tileCols<2, kAccumulate>(nv, k, ai, a_rs, a_cs, b + j, ldb, ci, ldc);
        break;
      case 1:
        tileCols<1, kAccumulate>(nv, k, ai, a_rs, a_cs, b + j, ldb, ci, ldc);
        break;
      default:
        break;
    }
  }
}

struct Dims {
  int64_t batch, seq, channels, hd, window;
  int64_t nh;    // local heads
  int64_t hdp;   // hd rounded up to 16
  int64_t tpad;  // seq rounded up to 16
  // Leading dimension of the [.., tpad] buffers (K^T, V^T, the score tiles): tpad + 16, so
  // that their rows are not a multiple of 1 KiB apart (T = 256: 64 rows would all fall into a
  // quarter of the L1 sets, and the column walks of the products would miss on conflicts).
  int64_t ldt;
  float scale;  // 1 / sqrt(hd)

  Dims(int64_t b, int64_t t, int64_t c, int64_t h, int64_t w)
      : batch(b),
        seq(t),
        channels(c),
        hd(h),
        window(w),
        nh(c / h),
        hdp(roundUp(h, kLanes)),
        tpad(roundUp(t, kLanes)),
        ldt(tpad + kLanes),
        scale(1.0f / std::sqrt(static_cast<float>(h))) {}

  // First key a query attends.
  int64_t keyBegin(int64_t i) const {
    return window > 0 ? std::max<int64_t>(0, i - window + 1) : 0;
  }
  // qkv row (b, t) plus the offset of head h's columns in part (0 = Q, 1 = K, 2 = V).
  int64_t qkvOffset(int64_t b, int64_t t, int64_t part, int64_t h) const {
    return (b * seq + t) * 3 * channels + part * channels + h * hd;
  }
  int64_t outOffset(int64_t b, int64_t t, int64_t h) const {
    return (b * seq + t) * channels + h * hd;
  }
};

void checkDims(const Dims& d) {
  KDGRID_CHECK(d.batch >= 0 && d.seq >= 0, "attention: batch {} and seq {} must be >= 0", d.batch,
               d.seq);
  KDGRID_CHECK(d.hd > 0 && d.channels > 0 && d.channels % d.hd == 0,
               "attention: channels {} must be a positive multiple of head_dim {}", d.channels,
               d.hd);
  KDGRID_CHECK(d.window >= 0, "attention: window {} must be >= 0", d.window);
}

// The key columns [k0, k1) of a query block [i0, i1): 16-aligned and covering every key a row
// of the block attends.
struct KeyRange {
  int64_t k0, k1;
  KeyRange(const Dims& d, int64_t i0, int64_t i1)
      : k0(d.keyBegin(i0) / kLanes * kLanes), k1(roundUp(i1, kLanes)) {}
  int64_t size() const { return k1 - k0; }
};

// Sets row entries (columns k0 + c) that query i may not attend to -inf: c < keyBegin(i) - k0
// and c > i - k0.
void maskRow(float* row, const Dims& d, int64_t i, const KeyRange& kr) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  const int64_t begin = d.keyBegin(i) - kr.k0;
  const int64_t end = i + 1 - kr.k0;
  for (int64_t c = 0; c < begin; ++c) row[c] = kNegInf;
  for (int64_t c = end; c < kr.size(); ++c) row[c] = kNegInf;
}

// Rows of one head are hd values at a stride of 3C (qkv) or C (out): each is a few cache lines
// in a different place, which the hardware prefetcher does not follow; fetch this many rows
// ahead.
constexpr int64_t kPrefetchRows = 16;

template <typename T>
void prefetchRow(const T* p, int64_t n) {
  const char* c = reinterpret_cast<const char*>(p);
  for (int64_t off = 0; off < n * int64_t(sizeof(T)); off += 64) __builtin_prefetch(c + off);
}

// Gathers one head: dst[t * ld + c] = scale * src[t * src_stride + c] for t < seq, c < hd; the
// rest of rows [0, rows) (columns hd..ld-1, rows seq..rows-1) zeroed.
template <typename T>
void gatherRows(float* dst, int64_t ld, int64_t rows, const T* src, int64_t src_stride, int64_t seq,
                int64_t hd, float scale) {
  for (int64_t t = 0; t < seq; ++t) {
    if (t + kPrefetchRows < seq) prefetchRow(src + (t + kPrefetchRows) * src_stride, hd);
    float* r = dst + t * ld;
    simd::loadRow(r, src + t * src_stride, hd);
    if (scale != 1.0f)
      for (int64_t c = 0; c < hd; ++c) r[c] *= scale;
    std::fill(r + hd, r + ld, 0.0f);
  }
  std::fill(dst + seq * ld, dst + rows * ld, 0.0f);
}

// Transposed gather: dst[c * ld + t] = src[t * src_stride + c] for c < hd, t < seq; columns
// seq..ld-1 (ld a multiple of 16) zeroed. Goes through 16-row tiles (tile: 16 * hd floats) so
// that every store to dst is a whole 16-float vector.
template <typename T>
void gatherTransposed(float* dst, int64_t ld, const T* src, int64_t src_stride, int64_t seq,
                      int64_t hd, float* tile) {
  for (int64_t t0 = 0; t0 < ld; t0 += kLanes) {
    const int64_t n = std::clamp<int64_t>(seq - t0, 0, kLanes);
    for (int64_t r = 0; r < n; ++r) {
      const int64_t t = t0 + r;
      if (t + kPrefetchRows < seq) prefetchRow(src + (t + kPrefetchRows) * src_stride, hd);
      simd::loadRow(tile + r * hd, src + t * src_stride, hd);
    }
    std::fill(tile + n * hd, tile + kLanes * hd, 0.0f);
    for (int64_t c = 0; c < hd; ++c) {
      float* out = dst + c * ld + t0;
      for (int64_t r = 0; r < kLanes; ++r) out[r] = tile[r * hd + c];
    }
  }
}

// Exact softmax of one masked score row of n (a multiple of 16) columns, in place; returns
// the log-sum-exp and writes 1/sum.
float softmaxRow(float* row, int64_t n, float* inv_sum) {
  const float m = simd::max16n(row, n);  // finite: every query attends at least itself
  Vec16f vsum = Vec16f{};
  for (int64_t c = 0; c < n; c += kLanes) {
    const Vec16f p = simd::expBounded16(load16(row + c) - m);
    store16(row + c, p);
    vsum += p;
  }
  const float sum = simd::hsum16(vsum);
  *inv_sum = 1.0f / sum;
  return m + std::log(sum);
}

template <typename T>
void forwardHead(const Dims& d, int64_t b, int64_t h, T* out, float* lse, const T* qkv,
                 float* scratch) {
  const int64_t tpad = d.tpad, hdp = d.hdp, ldt = d.ldt;
  float* qs = scratch;                    // [tpad, hdp] scaled Q
  float* kt = qs + tpad * hdp;            // [hd, ldt] K transposed
  float* v = kt + d.hd * ldt;             // [tpad, hdp]
  float* sbuf = v + tpad * hdp;           // [kBlockRows, ldt] scores, then probabilities
  float* obuf = sbuf + kBlockRows * ldt;  // [kBlockRows, hdp]
  float* tmp = obuf + kBlockRows * hdp;   // [16, hd] transpose tile
  float inv_sum[kBlockRows];

  const int64_t stride = 3 * d.channels;
  gatherRows(qs, hdp, tpad, qkv + d.qkvOffset(b, 0, 0, h), stride, d.seq, d.hd, d.scale);
  gatherTransposed(kt, ldt, qkv + d.qkvOffset(b, 0, 1, h), stride, d.seq, d.hd, tmp);
  gatherRows(v, hdp, tpad, qkv + d.qkvOffset(b, 0, 2, h), stride, d.seq, d.hd, 1.0f);

  for (int64_t i0 = 0; i0 < d.seq; i0 += kBlockRows) {
    const int64_t i1 = std::min(d.seq, i0 + kBlockRows);
    const int64_t rows = i1 - i0;
    const KeyRange kr(d, i0, i1);
    const int64_t n = kr.size();
    gemmBroadcast<false>(rows, n, d.hd, qs + i0 * hdp, hdp, 1, kt + kr.k0, ldt, sbuf, ldt);
    for (int64_t r = 0; r < rows; ++r) {
      float* row = sbuf + r * ldt;
      maskRow(row, d, i0 + r, kr);
      const float l = softmaxRow(row, n, &inv_sum[r]);
      if (lse) lse[(b * d.nh + h) * d.seq + i0 + r] = l;
    }
    gemmBroadcast<false>(rows, hdp, n, sbuf, ldt, 1, v + kr.k0 * hdp, hdp, obuf, hdp);
    for (int64_t r = 0; r < rows; ++r) {
      float* o = obuf + r * hdp;
      for (int64_t c = 0; c < d.hd; ++c) o[c] *= inv_sum[r];
      simd::storeRow(out + d.outOffset(b, i0 + r, h), o, d.hd);
    }
  }
}

template <typename T>
void backwardHead(const Dims& d, int64_t b, int64_t h, T* dqkv, const T* dout, const T* qkv,
                  const float* lse, float* scratch) {
  const int64_t tpad = d.tpad, hdp = d.hdp, ldt = d.ldt;
  float* qs = scratch;                     // [tpad, hdp] scaled Q
  float* k = qs + tpad * hdp;              // [tpad, hdp]
  float* kt = k + tpad * hdp;              // [hd, ldt]
  float* vt = kt + d.hd * ldt;             // [hd, ldt]
  float* dout_h = vt + d.hd * ldt;         // [tpad, hdp] dO
  float* dk = dout_h + tpad * hdp;         // [tpad, hdp] accumulated dK
  float* dv = dk + tpad * hdp;             // [tpad, hdp] accumulated dV
  float* sbuf = dv + tpad * hdp;           // [kBlockRows, ldt] P
  float* dsbuf = sbuf + kBlockRows * ldt;  // [kBlockRows, ldt] dP, then dS
  float* dq = dsbuf + kBlockRows * ldt;    // [kBlockRows, hdp]
  float* tmp = dq + kBlockRows * hdp;      // [16, hd] transpose tile

  const int64_t stride = 3 * d.channels;
  gatherRows(qs, hdp, tpad, qkv + d.qkvOffset(b, 0, 0, h), stride, d.seq, d.hd, d.scale);
  gatherRows(k, hdp, tpad, qkv + d.qkvOffset(b, 0, 1, h), stride, d.seq, d.hd, 1.0f);
  gatherTransposed(kt, ldt, k, hdp, d.seq, d.hd, tmp);  // from the fp32 copy in cache
  gatherTransposed(vt, ldt, qkv + d.qkvOffset(b, 0, 2, h), stride, d.seq, d.hd, tmp);
  gatherRows(dout_h, hdp, tpad, dout + d.outOffset(b, 0, h), d.channels, d.seq, d.hd, 1.0f);
  std::fill(dk, dk + tpad * hdp, 0.0f);
  std::fill(dv, dv + tpad * hdp, 0.0f);

  const float* lse_h = lse + (b * d.nh + h) * d.seq;
  for (int64_t i0 = 0; i0 < d.seq; i0 += kBlockRows) {
    const int64_t i1 = std::min(d.seq, i0 + kBlockRows);
    const int64_t rows = i1 - i0;
    const KeyRange kr(d, i0, i1);
    const int64_t n = kr.size();
    // P = exp(S - lse), masked entries exactly 0.
    gemmBroadcast<false>(rows, n, d.hd, qs + i0 * hdp, hdp, 1, kt + kr.k0, ldt, sbuf, ldt);
    for (int64_t r = 0; r < rows; ++r) {
      float* row = sbuf + r * ldt;
      maskRow(row, d, i0 + r, kr);
      const float l = lse_h[i0 + r];
      for (int64_t c = 0; c < n; c += kLanes)
        store16(row + c, simd::expBounded16(load16(row + c) - l));
    }
    // dP = dO V^T; dS = P * (dP - D) with D_i = rowsum(dO_i * O_i) = sum_j P_ij dP_ij, taken
    // from the fp32 tile (the row's whole key range is in it) rather than from the stored,
    // possibly bf16-rounded, output: in bf16 that rounding would dominate dS where dP ~ D.
    gemmBroadcast<false>(rows, n, d.hd, dout_h + i0 * hdp, hdp, 1, vt + kr.k0, ldt, dsbuf, ldt);
    for (int64_t r = 0; r < rows; ++r) {
      const float* p = sbuf + r * ldt;
      float* ds = dsbuf + r * ldt;
      Vec16f vd = Vec16f{};
      for (int64_t c = 0; c < n; c += kLanes) vd += load16(p + c) * load16(ds + c);
      const float dr = simd::hsum16(vd);
      for (int64_t c = 0; c < n; c += kLanes)
        store16(ds + c, load16(p + c) * (load16(ds + c) - dr));
    }
    // dV[k0:k1] += P^T dO, dK[k0:k1] += dS^T (scale Q): A read transposed (a_rs 1, a_cs ldt).
    gemmBroadcast<true>(n, hdp, rows, sbuf, 1, ldt, dout_h + i0 * hdp, hdp, dv + kr.k0 * hdp, hdp);
    gemmBroadcast<true>(n, hdp, rows, dsbuf, 1, ldt, qs + i0 * hdp, hdp, dk + kr.k0 * hdp, hdp);
    // dQ = scale dS K.
    gemmBroadcast<false>(rows, hdp, n, dsbuf, ldt, 1, k + kr.k0 * hdp, hdp, dq, hdp);
    for (int64_t r = 0; r < rows; ++r) {
      float* q = dq + r * hdp;
      for (int64_t c = 0; c < d.hd; ++c) q[c] *= d.scale;
      simd::storeRow(dqkv + d.qkvOffset(b, i0 + r, 0, h), q, d.hd);
    }
  }
  for (int64_t t = 0; t < d.seq; ++t) {
    simd::storeRow(dqkv + d.qkvOffset(b, t, 1, h), dk + t * hdp, d.hd);
    simd::storeRow(dqkv + d.qkvOffset(b, t, 2, h), dv + t * hdp, d.hd);
  }
}

}  // namespace

template <typename T>
void attentionForward(T* out, float* lse, const T* qkv, int64_t batch, int64_t seq,
                      int64_t channels, int64_t head_dim, int64_t window) {
  const Dims d(batch, seq, channels, head_dim, window);
  checkDims(d);
  const int64_t scratch_floats =
      2 * d.tpad * d.hdp + d.hd * d.ldt + kBlockRows * (d.ldt + d.hdp) + kLanes * d.hd;
  const int64_t pairs = batch * d.nh;
  // Dynamic: (b, h) pairs cost the same, but a core shared with another process finishes late.
  // Which thread computes a pair does not change its result.
#pragma omp parallel if (pairs > 1)
  {
    const Scratch scratch(scratch_floats);
#pragma omp for schedule(dynamic, 1)
    for (int64_t bh = 0; bh < pairs; ++bh)
      forwardHead(d, bh / d.nh, bh % d.nh, out, lse, qkv, scratch.data());
  }
}

template <typename T>
void attentionBackward(T* dqkv, const T* dout, const T* qkv, const float* lse, int64_t batch,
                       int64_t seq, int64_t channels, int64_t head_dim, int64_t window) {
  const Dims d(batch, seq, channels, head_dim, window);
  checkDims(d);
  KDGRID_CHECK(lse != nullptr || batch * seq == 0, "attention backward needs the forward's lse");
  const int64_t scratch_floats =
      5 * d.tpad * d.hdp + 2 * d.hd * d.ldt + kBlockRows * (2 * d.ldt + d.hdp) + kLanes * d.hd;
  const int64_t pairs = batch * d.nh;
#pragma omp parallel if (pairs > 1)
  {
    const Scratch scratch(scratch_floats);
#pragma omp for schedule(dynamic, 1)
    for (int64_t bh = 0; bh < pairs; ++bh)
      backwardHead(d, bh / d.nh, bh % d.nh, dqkv, dout, qkv, lse, scratch.data());
  }
}

#define KDGRID_INSTANTIATE(T)                                                                 \
  template void attentionForward<T>(T*, float*, const T*, int64_t, int64_t, int64_t, int64_t, \
                                    int64_t);                                                 \
  template void attentionBackward<T>(T*, const T*, const T*, const float*, int64_t, int64_t,  \
                                     int64_t, int64_t, int64_t);
KDGRID_INSTANTIATE(float)
KDGRID_INSTANTIATE(bf16)
KDGRID_INSTANTIATE(f16)
#undef KDGRID_INSTANTIATE

}  // namespace kdgrid::cpu
