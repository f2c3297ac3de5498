#include "src/distill/kd_loss.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/kl.h"

namespace kdgrid {
namespace {

using cpu::kKlMaxes;
using cpu::kKlSums;
using cpu::kXentIgnore;

// Per-row statistics of one chunk of n rows, laid out for two fused reductions:
//   maxes [3, n]: cross-entropy max | divergence maxes (kKlMaxes rows)
//   sums  [5, n]: cross-entropy sum | target logit | divergence sums (kKlSums rows)
struct ChunkStats {
  int64_t n;
  std::vector<float> local_max, global_max, sums, jsd_terms, divergence;
  explicit ChunkStats(int64_t rows)
      : n(rows),
        local_max((1 + kKlMaxes) * rows),
        sums((2 + kKlSums) * rows),
        jsd_terms(cpu::kJsdTerms * rows, 0.0f),
        divergence(rows) {}
  float* xentMax() { return local_max.data(); }
  float* klMax() { return local_max.data() + n; }
  float* xentSum() { return sums.data(); }
  float* targetLogit() { return sums.data() + n; }
  float* klSums() { return sums.data() + 2 * n; }
  const float* globalXentMax() const { return global_max.data(); }
  const float* globalKlMax() const { return global_max.data() + n; }
};

// Steps 2-4 of both kernels' protocols: MAX, rescale, SUM (copies when tp = 1).
void reduceStats(ChunkStats& st, Communicator& tp, cpu::Divergence d) {
  st.global_max = st.local_max;
  if (tp.size() == 1) return;
  tp.allReduceMax(st.global_max.data(), st.global_max.size());
  cpu::xentRescaleSums(st.xentSum(), st.xentMax(), st.globalXentMax(), st.n);
  cpu::klRescaleSums(st.klSums(), st.klMax(), st.globalKlMax(), st.n, d);
  tp.allReduceSum(st.sums.data(), st.sums.size());
}

// The scored rows' cross-entropy and divergence, from the reduced statistics.
LossSums rowSums(ChunkStats& st, const uint32_t* targets) {
  LossSums out;
  for (int64_t i = 0; i < st.n; ++i) {
    if (targets[i] == kXentIgnore) continue;
    // As headForwardBackward: log S + M - z_target in double.
    out.ce_sum += std::log(double(st.xentSum()[i])) + st.globalXentMax()[i] - st.targetLogit()[i];
    out.kl_sum += st.divergence[i];
    out.tokens += 1;
  }
  return out;
}

// Row scales of the two terms' gradients: alpha T^2 for the divergence, 1 - alpha for CE.
float kdScale(const KdParams& kd, float grad_scale) {
  return static_cast<float>(kd.alpha * kd.temperature * kd.temperature * grad_scale);
}
float ceScale(const KdParams& kd, float grad_scale) {
  return static_cast<float>((1.0 - kd.alpha) * grad_scale);
}

void checkTrainingTargets(const uint32_t* targets, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    KDGRID_CHECK(targets[i] != kXentIgnore, "distillation backward over an ignored row {}", i);
}

}  // namespace

LossSums kdDenseChunk(Tensor& student_logits, const Tensor& teacher_logits, const uint32_t* targets,
                      const cpu::VocabSlice& slice, Communicator& tp, const KdParams& kd,
                      float grad_scale) {
  const int64_t n = student_logits.dim(0);
  KDGRID_CHECK(
      teacher_logits.shape() == student_logits.shape() && student_logits.dim(1) == slice.size,
      "distillation: student logits {} and teacher logits {} differ (slice of {})",
      student_logits.describe(), teacher_logits.describe(), slice.size);
  float* zs = student_logits.data<float>();
  const float* zt = teacher_logits.data<float>();
  const cpu::Divergence d = kd.divergence;
  ChunkStats st(n);
  cpu::xentRowStats(st.xentMax(), st.xentSum(), st.targetLogit(), zs, targets, n, slice);
  const float temperature = static_cast<float>(kd.temperature);
  cpu::klRowStats(st.klMax(), st.klSums(), zs, zt, n, slice, temperature, d);
  reduceStats(st, tp, d);
  if (d == cpu::Divergence::kJsd) {
    cpu::klJsdTerms(st.jsd_terms.data(), zs, zt, st.globalKlMax(), st.klSums(), n, slice,
                    temperature);
    if (tp.size() > 1) tp.allReduceSum(st.jsd_terms.data(), st.jsd_terms.size());
  }
  cpu::klLoss(st.divergence.data(), st.klSums(), st.jsd_terms.data(), n, d);
  const LossSums out = rowSums(st, targets);
  if (grad_scale > 0) {
    checkTrainingTargets(targets, n);
    // One pass over the student's logits: alpha T^2 dD/dz + (1 - alpha) dCE/dz, in place.
    const cpu::XentGradTerm xent{st.globalXentMax(), st.xentSum(), targets,
                                 ceScale(kd, grad_scale)};
    cpu::klBackward(zs, zs, zt, st.globalKlMax(), st.klSums(), st.divergence.data(),
                    st.jsd_terms.data(), n, slice, temperature, d, kdScale(kd, grad_scale), &xent);
  }
  return out;
}

LossSums kdTopkChunk(Tensor& student_logits, const uint32_t* ids, const float* logprobs, int64_t k,
                     float teacher_scale, const uint32_t* targets, const cpu::VocabSlice& slice,
                     Communicator& tp, const KdParams& kd, float grad_scale) {
  const int64_t n = student_logits.dim(0);
  float* zs = student_logits.data<float>();
  const cpu::Divergence d = kd.divergence;
  ChunkStats st(n);
  cpu::xentRowStats(st.xentMax(), st.xentSum(), st.targetLogit(), zs, targets, n, slice);
  const float temperature = static_cast<float>(kd.temperature);
  cpu::klTopkRowStats(st.klMax(), st.klSums(), zs, ids, logprobs, k, n, slice, temperature,
                      teacher_scale, d);
  reduceStats(st, tp, d);
  if (d == cpu::Divergence::kJsd) {
    cpu::klTopkJsdTerms(st.jsd_terms.data(), zs, ids, logprobs, k, st.globalKlMax(), st.klSums(), n,
                        slice, temperature, teacher_scale);
    if (tp.size() > 1) tp.allReduceSum(st.jsd_terms.data(), st.jsd_terms.size());
  }
  cpu::klLoss(st.divergence.data(), st.klSums(), st.jsd_terms.data(), n, d);
  const LossSums out = rowSums(st, targets);
  if (grad_scale > 0) {
    checkTrainingTargets(targets, n);
    // The divergence's gradient lives on the k ids only: computed before cross-entropy's
    // in-place backward overwrites the logits, then added at those ids.
    std::vector<float> grad_k(n * k);
    cpu::klTopkBackward(grad_k.data(), zs, ids, logprobs, k, st.globalKlMax(), st.klSums(),
                        st.divergence.data(), st.jsd_terms.data(), n, slice, temperature,
                        teacher_scale, d, kdScale(kd, grad_scale));
    cpu::xentBackwardInPlace(zs, st.globalXentMax(), st.xentSum(), targets, n, slice,
                             ceScale(kd, grad_scale));
    cpu::klTopkScatterAdd(zs, grad_k.data(), ids, k, n, slice);
  }
  return out;
}

AgreementSums teacherAgreementChunk(const Tensor& student_logits, const Tensor& teacher_logits,
                                    const uint32_t* targets, const cpu::VocabSlice& slice,
                                    Communicator& tp) {
  const int64_t n = student_logits.dim(0);
  KDGRID_CHECK(
      teacher_logits.shape() == student_logits.shape() && student_logits.dim(1) == slice.size,
      "eval --teacher: student logits {} and teacher logits {} differ", student_logits.describe(),
      teacher_logits.describe());
  const float* zs = student_logits.data<float>();
  const float* zt = teacher_logits.data<float>();
  const cpu::Divergence d = cpu::Divergence::kForwardKl;
  ChunkStats st(n);
  cpu::xentRowStats(st.xentMax(), st.xentSum(), st.targetLogit(), zs, targets, n, slice);
  cpu::klRowStats(st.klMax(), st.klSums(), zs, zt, n, slice, 1.0f, d);  // maxes: raw logits
  // Lowest local column attaining each row's local max (student, teacher), as a candidate for
  // the global argmax: minus its global id, or the lowest int64 when this rank has none.
  const int64_t nv = std::clamp<int64_t>(slice.valid - slice.start, 0, slice.size);
  std::vector<int64_t> candidate(2 * n, std::numeric_limits<int64_t>::min());
  auto localArgmax = [&](const float* row, float max) {
    for (int64_t c = 0; c < nv; ++c)
      if (row[c] == max) return c;
    return int64_t{-1};
  };
  reduceStats(st, tp, d);
  for (int64_t i = 0; i < n; ++i) {
    for (int which = 0; which < 2; ++which) {
      const float* row = (which == 0 ? zs : zt) + i * slice.size;
      const float lmax = st.klMax()[which * n + i], gmax = st.globalKlMax()[which * n + i];
      if (nv == 0 || lmax != gmax) continue;
      candidate[which * n + i] = -(slice.start + localArgmax(row, lmax));
    }
  }
  if (tp.size() > 1) tp.allReduceMax(candidate.data(), candidate.size());
  cpu::klLoss(st.divergence.data(), st.klSums(), nullptr, n, d);
  const LossSums sums = rowSums(st, targets);
  AgreementSums out{sums.ce_sum, sums.kl_sum, 0, sums.tokens};
  for (int64_t i = 0; i < n; ++i)
    if (targets[i] != kXentIgnore && candidate[i] == candidate[n + i]) out.agree += 1;
  return out;
}

}  // namespace kdgrid
