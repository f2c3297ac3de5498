// Vocabulary-parallel distillation divergences. Dense rows: one thread per row range; within a
// row the max and the exp sweeps read the student and teacher rows twice, the second time from
// cache, like cross-entropy. forward_kl and reverse_kl are vectorised (simd::expBounded16);
// jsd needs a log per element and runs scalar. Top-k rows are short (k pairs) and scalar.
#include "kernels/cpu/kl.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/simd.h"
#include "src/core/check.h"

namespace kdgrid::cpu {
namespace {

using simd::kLanes;
using simd::load16;
using simd::store16;
using simd::Vec16f;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr double kLn2 = 0.69314718055994530942;
// Below this many logits the OpenMP fork costs more than the work (as cross-entropy).
constexpr int64_t kParallelMinElements = 1 << 15;
// Rows handed to a thread at a time (dynamic: a core slowed by another process gets fewer).
constexpr int kRowsPerChunk = 16;

int64_t validColumns(const VocabSlice& s) {
  return std::clamp<int64_t>(s.valid - s.start, 0, s.size);
}

void checkArgs(const VocabSlice& s, int64_t rows, float temperature) {
  KDGRID_CHECK(rows >= 0 && s.start >= 0 && s.size >= 0 && s.valid > 0,
               "kl: bad vocabulary slice (rows {}, start {}, size {}, valid {})", rows, s.start,
               s.size, s.valid);
  KDGRID_CHECK(temperature > 0 && std::isfinite(temperature), "kl: temperature {} is not > 0",
               temperature);
}

void checkTopkIds(const uint32_t* ids, int64_t k, int64_t rows, const VocabSlice& s) {
  KDGRID_CHECK(k >= 1, "kl: top-k needs k >= 1 (got {})", k);
  for (int64_t i = 0; i < rows * k; ++i)
    KDGRID_CHECK(ids[i] < s.valid, "kl: top-k id {} (row {}) is not below the vocabulary size {}",
                 ids[i], i / k, s.valid);
}

// max(x[0, n)) for n >= 0 (-inf when n = 0).
float rawMax(const float* x, int64_t n) {
  const int64_t full = n / kLanes * kLanes;
  float m = simd::max16n(x, full);
  for (int64_t c = full; c < n; ++c) m = std::max(m, x[c]);
  return m;
}

// Local statistics of one row of n pairs with a = ss * xs[c], b = st * xt[c] (klRowStats).
struct RowStats {
  float ma = kNegInf, mb = kNegInf, sa = 0, sb = 0, x = 0;
};

RowStats rowStats(const float* xs, const float* xt, int64_t n, float ss, float st, Divergence d) {
  RowStats s;
  if (n == 0) return s;
  // ss, st > 0: the max of the scaled values is the scaled max (rounding is monotone), so
  // every a - max a below is <= 0, as expBounded16 needs.
  s.ma = ss * rawMax(xs, n);
  s.mb = st * rawMax(xt, n);
  Vec16f va{}, vb{}, vx{};
  int64_t c = 0;
  for (; c + kLanes <= n; c += kLanes) {
    const Vec16f da = load16(xs + c) * ss - s.ma;
    const Vec16f db = load16(xt + c) * st - s.mb;
    const Vec16f ea = simd::expBounded16(da), eb = simd::expBounded16(db);
    va += ea;
    vb += eb;
    if (d == Divergence::kForwardKl) vx += eb * (db - da);
    if (d == Divergence::kReverseKl) vx += ea * (da - db);
  }
  s.sa = simd::hsum16(va);
  s.sb = simd::hsum16(vb);
  s.x = simd::hsum16(vx);
  for (; c < n; ++c) {
    const float da = xs[c] * ss - s.ma, db = xt[c] * st - s.mb;
    const float ea = std::exp(da), eb = std::exp(db);
    s.sa += ea;
    s.sb += eb;
    if (d == Divergence::kForwardKl) s.x += eb * (db - da);
    if (d == Divergence::kReverseKl) s.x += ea * (da - db);
  }
  return s;
}

void storeStats(const RowStats& s, int64_t r, int64_t rows, float* local_max, float* local_sums) {
  local_max[r] = s.ma;
  local_max[rows + r] = s.mb;
  local_sums[r] = s.sa;
  local_sums[rows + r] = s.sb;
  local_sums[2 * rows + r] = s.x;
}

// What the per-element formulas need of a row once everything is reduced: the log-normalisers
// ca = max a + log sum exp(a - max a) (so log p_s = a - ca), cb likewise, D (reverse_kl) and
// KL(p_s || m) (jsd).
struct RowGlobals {
  float ca, cb, div, js;
};

RowGlobals rowGlobals(const float* global_max, const float* global_sums, const float* divergence,
                      const float* jsd_terms, int64_t r, int64_t rows, Divergence d) {
  RowGlobals g;
  g.ca = static_cast<float>(double(global_max[r]) + std::log(double(global_sums[r])));
  g.cb = static_cast<float>(double(global_max[rows + r]) + std::log(double(global_sums[rows + r])));
  g.div = d == Divergence::kReverseKl ? divergence[r] : 0.0f;
  g.js = d == Divergence::kJsd ? jsd_terms[rows + r] : 0.0f;
  return g;
}

// log((exp(x) + exp(y)) / 2), stable for any finite x, y.
inline float logMean(float x, float y) {
  const float hi = std::max(x, y), lo = std::min(x, y);
  return hi + std::log1p(std::exp(lo - hi)) - static_cast<float>(kLn2);
}

// d D / d a for one element (a = z_s / T, b = z_t / T or the scaled top-k log-probability).
inline float gradScalar(float a, float b, const RowGlobals& g, Divergence d) {
  const float la = a - g.ca, lb = b - g.cb;  // log p_s, log p_t
  const float ps = std::exp(la);
  switch (d) {
    case Divergence::kForwardKl:
      return ps - std::exp(lb);
    case Divergence::kReverseKl:
      return ps * (la - lb - g.div);
    case Divergence::kJsd:
      return 0.5f * ps * (la - logMean(la, lb) - g.js);
  }
  return 0.0f;
}

// This rank's share of KL(p_t || m) and KL(p_s || m) over n pairs (double accumulators: the
// per-element terms have both signs).
void rowJsdTerms(const float* xs, const float* xt, int64_t n, float ss, float st,
                 const RowGlobals& g, double* jt, double* js) {
  double t = 0, s = 0;
  for (int64_t c = 0; c < n; ++c) {
    const float la = xs[c] * ss - g.ca, lb = xt[c] * st - g.cb;
    const float lm = logMean(la, lb);
    t += double(std::exp(lb)) * (lb - lm);
    s += double(std::exp(la)) * (la - lm);
  }
  *jt = t;
  *js = s;
}

// The pairs of row r of a top-k problem whose id this rank holds: student logits gathered into
// xs, teacher log-probabilities into xt, their positions j in the row into pos. Returns n.
int64_t gatherTopk(const float* student, const uint32_t* ids, const float* logprobs, int64_t k,
                   int64_t r, const VocabSlice& slice, float* xs, float* xt, int64_t* pos) {
  int64_t n = 0;
  for (int64_t j = 0; j < k; ++j) {
    const int64_t c = static_cast<int64_t>(ids[r * k + j]) - slice.start;
    if (c < 0 || c >= slice.size) continue;  // another rank's id (ids < valid: never padding)
    xs[n] = student[r * slice.size + c];
    xt[n] = logprobs[r * k + j];
    pos[n] = j;
    ++n;
  }
  return n;
}

}  // namespace

void klRowStats(float* local_max, float* local_sums, const float* student, const float* teacher,
                int64_t rows, const VocabSlice& slice, float temperature, Divergence d) {
  checkArgs(slice, rows, temperature);
  const int64_t nv = validColumns(slice);
  const float inv_t = 1.0f / temperature;
#pragma omp parallel for schedule(dynamic, kRowsPerChunk) if (rows * nv >= kParallelMinElements)
  for (int64_t r = 0; r < rows; ++r) {
    const RowStats s =
        rowStats(student + r * slice.size, teacher + r * slice.size, nv, inv_t, inv_t, d);
    storeStats(s, r, rows, local_max, local_sums);
  }
}

void klRescaleSums(float* sums, const float* local_max, const float* global_max, int64_t rows,
                   Divergence d) {
  for (int64_t r = 0; r < rows; ++r) {
    const float ma = local_max[r], mb = local_max[rows + r];
    float& sa = sums[r];
    float& sb = sums[rows + r];
    float& x = sums[2 * rows + r];
    if (ma == kNegInf) {  // this rank holds no column of the row: nothing to add
      sa = sb = x = 0.0f;
      continue;
    }
    // Shifts of the reference points, <= 0 (the global maxima are finite: some rank holds id 0).
    const float da = ma - global_max[r], db = mb - global_max[rows + r];
    const float ea = std::exp(da), eb = std::exp(db);
    // sum e^{b - Mb} ((b - Mb) - (a - Ma)) = e^{db} (X + S_b (db - da)), and mirrored.
    if (d == Divergence::kForwardKl) x = eb * (x + sb * (db - da));
    if (d == Divergence::kReverseKl) x = ea * (x + sa * (da - db));
    sa *= ea;
    sb *= eb;
  }
}

void klJsdTerms(float* terms, const float* student, const float* teacher, const float* global_max,
                const float* global_sums, int64_t rows, const VocabSlice& slice,
                float temperature) {
  checkArgs(slice, rows, temperature);
  const int64_t nv = validColumns(slice);
  const float inv_t = 1.0f / temperature;
#pragma omp parallel for schedule(dynamic, kRowsPerChunk) if (rows * nv >= kParallelMinElements)
  for (int64_t r = 0; r < rows; ++r) {
    const RowGlobals g =
        rowGlobals(global_max, global_sums, nullptr, nullptr, r, rows, Divergence::kForwardKl);
    double jt = 0, js = 0;
    rowJsdTerms(student + r * slice.size, teacher + r * slice.size, nv, inv_t, inv_t, g, &jt, &js);
    terms[r] = static_cast<float>(jt);
    terms[rows + r] = static_cast<float>(js);
  }
}

void klLoss(float* loss, const float* global_sums, const float* jsd_terms, int64_t rows,
            Divergence d) {
  for (int64_t r = 0; r < rows; ++r) {
    // In double: X / S and the log-normalisers are O(1..10) each and D can be ~1e-4.
    const double sa = global_sums[r], sb = global_sums[rows + r], x = global_sums[2 * rows + r];
    double v = 0;
    switch (d) {
      case Divergence::kForwardKl:
        v = x / sb - std::log(sb) + std::log(sa);
        break;
      case Divergence::kReverseKl:
        v = x / sa - std::log(sa) + std::log(sb);
        break;
      case Divergence::kJsd:
        v = 0.5 * (double(jsd_terms[r]) + double(jsd_terms[rows + r]));
        break;
    }
    loss[r] = static_cast<float>(v);
  }
}

void klBackward(float* grad, const float* student, const float* teacher, const float* global_max,
                const float* global_sums, const float* divergence, const float* jsd_terms,
                int64_t rows, const VocabSlice& slice, float temperature, Divergence d,
                float row_scale, const XentGradTerm* xent) {
  checkArgs(slice, rows, temperature);
  const int64_t nv = validColumns(slice);
  const float inv_t = 1.0f / temperature;
  const float k = row_scale * inv_t;  // d D / d z_s = (d D / d a) / T
#pragma omp parallel for schedule(dynamic, \
                                  kRowsPerChunk) if (rows * slice.size >= kParallelMinElements)
  for (int64_t r = 0; r < rows; ++r) {
    const float* zs = student + r * slice.size;
    const float* zt = teacher + r * slice.size;
    float* out = grad + r * slice.size;
    const RowGlobals g = rowGlobals(global_max, global_sums, divergence, jsd_terms, r, rows, d);
    // Cross-entropy at temperature 1: ce_k * exp(z - M) = ce_scale * softmax(z).
    const bool with_ce = xent != nullptr && xent->targets[r] != kXentIgnore;
    const float ce_m = with_ce ? xent->global_max[r] : 0.0f;
    const float ce_k = with_ce ? xent->row_scale / xent->global_sum[r] : 0.0f;
    int64_t c = 0;
    if (d != Divergence::kJsd) {
      for (; c + kLanes <= nv; c += kLanes) {
        const Vec16f zsv = load16(zs + c);
        const Vec16f la = zsv * inv_t - g.ca;
        const Vec16f ps = simd::expBounded16(la);
        const Vec16f lb = load16(zt + c) * inv_t - g.cb;
        Vec16f v;
        if (d == Divergence::kForwardKl) {
          v = ps - simd::expBounded16(lb);
        } else {
          v = ps * (la - lb - g.div);
        }
        v = v * k;
        if (with_ce) v += simd::expBounded16(zsv - ce_m) * ce_k;
        store16(out + c, v);
      }
    }
    for (; c < nv; ++c) {
      const float z = zs[c];
      float v = k * gradScalar(z * inv_t, zt[c] * inv_t, g, d);
      if (with_ce) v += std::exp(z - ce_m) * ce_k;
      out[c] = v;
    }
    std::fill(out + nv, out + slice.size, 0.0f);
    if (with_ce) {
      const int64_t tc = static_cast<int64_t>(xent->targets[r]) - slice.start;
      if (tc >= 0 && tc < nv) out[tc] -= xent->row_scale;
    }
  }
}

// Checks the arguments, then for each row r gathers the row's top-k entries held by this slice
// (gatherTopk) and calls fn(r, xs, xt, pos, n).
template <typename Fn>
void forEachTopkRow(const float* student, const uint32_t* ids, const float* logprobs, int64_t k,
                    int64_t rows, const VocabSlice& slice, float temperature, Fn&& fn) {
  checkArgs(slice, rows, temperature);
  checkTopkIds(ids, k, rows, slice);
  std::vector<float> xs(k), xt(k);
  std::vector<int64_t> pos(k);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t n =
        gatherTopk(student, ids, logprobs, k, r, slice, xs.data(), xt.data(), pos.data());
    fn(r, xs.data(), xt.data(), pos.data(), n);
  }
}

void klTopkRowStats(float* local_max, float* local_sums, const float* student, const uint32_t* ids,
                    const float* logprobs, int64_t k, int64_t rows, const VocabSlice& slice,
                    float temperature, float teacher_scale, Divergence d) {
  forEachTopkRow(student, ids, logprobs, k, rows, slice, temperature,
                 [&](int64_t r, const float* xs, const float* xt, const int64_t*, int64_t n) {
                   storeStats(rowStats(xs, xt, n, 1.0f / temperature, teacher_scale, d), r, rows,
                              local_max, local_sums);
                 });
}

void klTopkJsdTerms(float* terms, const float* student, const uint32_t* ids, const float* logprobs,
                    int64_t k, const float* global_max, const float* global_sums, int64_t rows,
                    const VocabSlice& slice, float temperature, float teacher_scale) {
  forEachTopkRow(student, ids, logprobs, k, rows, slice, temperature,
                 [&](int64_t r, const float* xs, const float* xt, const int64_t*, int64_t n) {
                   const RowGlobals g = rowGlobals(global_max, global_sums, nullptr, nullptr, r,
                                                   rows, Divergence::kForwardKl);
                   double jt = 0, js = 0;
                   rowJsdTerms(xs, xt, n, 1.0f / temperature, teacher_scale, g, &jt, &js);
                   terms[r] = static_cast<float>(jt);
                   terms[rows + r] = static_cast<float>(js);
                 });
}

void klTopkBackward(float* grad_k, const float* student, const uint32_t* ids, const float* logprobs,
                    int64_t k, const float* global_max, const float* global_sums,
                    const float* divergence, const float* jsd_terms, int64_t rows,
                    const VocabSlice& slice, float temperature, float teacher_scale, Divergence d,
                    float row_scale) {
  const float inv_t = 1.0f / temperature;
  forEachTopkRow(
      student, ids, logprobs, k, rows, slice, temperature,
      [&](int64_t r, const float* xs, const float* xt, const int64_t* pos, int64_t n) {
        float* out = grad_k + r * k;
        std::fill(out, out + k, 0.0f);
        const RowGlobals g = rowGlobals(global_max, global_sums, divergence, jsd_terms, r, rows, d);
        for (int64_t i = 0; i < n; ++i)
          out[pos[i]] = row_scale * inv_t * gradScalar(xs[i] * inv_t, xt[i] * teacher_scale, g, d);
      });
}

void klTopkScatterAdd(float* grad, const float* grad_k, const uint32_t* ids, int64_t k,
                      int64_t rows, const VocabSlice& slice) {
  checkTopkIds(ids, k, rows, slice);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < k; ++j) {
      const int64_t c = static_cast<int64_t>(ids[r * k + j]) - slice.start;
      if (c >= 0 && c < slice.size) grad[r * slice.size + c] += grad_k[r * k + j];
    }
}

}  // namespace kdgrid::cpu
