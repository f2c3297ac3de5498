#include "src/distill/kd_loss.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/kl.h"
#include "src/tensor/ops.h"
#include "src/tensor/ops_kl.h"
#include "src/tensor/staging.h"

namespace kdgrid {
namespace {

ops::VocabShard shardOf(const cpu::VocabSlice& slice) {
  return {slice.start, slice.size, slice.valid};
}

using cpu::kKlMaxes;
using cpu::kKlSums;
using cpu::kXentIgnore;

// Per-row statistics of one chunk of n rows on the backend, laid out for two fused reductions:
//   maxes [3, n]: cross-entropy max | divergence maxes (kKlMaxes rows)
//   sums  [5, n]: cross-entropy sum | target logit | divergence sums (kKlSums rows)
// plus the jsd terms [2, n] and the divergence [n]; targets [n] uploaded from the host.
struct ChunkStats {
  int64_t n;
  Tensor local_max, global_max, sums, jsd_terms, divergence, targets;
  ChunkStats(Runtime& rt, const uint32_t* host_targets, int64_t rows)
      : n(rows),
        local_max(rt.pool.zeros({(1 + kKlMaxes) * rows}, DType::kF32)),
        global_max(rt.pool.zeros({(1 + kKlMaxes) * rows}, DType::kF32)),
        sums(rt.pool.zeros({(2 + kKlSums) * rows}, DType::kF32)),
        jsd_terms(rt.pool.zeros({cpu::kJsdTerms * rows}, DType::kF32)),
        divergence(rt.pool.zeros({rows}, DType::kF32)),
        targets(rt.pool.empty({rows}, DType::kU32)) {
    copyFromHost(targets, host_targets);
  }
  Tensor xentMax() const { return local_max.rows(0, n); }
  Tensor klMax() const { return local_max.rows(n, kKlMaxes * n); }
  Tensor xentSum() const { return sums.rows(0, n); }
  Tensor targetLogit() const { return sums.rows(n, n); }
  Tensor klSums() const { return sums.rows(2 * n, kKlSums * n); }
  Tensor globalXentMax() const { return global_max.rows(0, n); }
  Tensor globalKlMax() const { return global_max.rows(n, kKlMaxes * n); }
};

// Steps 2-4 of both kernels' protocols: MAX, rescale, SUM (copies when tp = 1).
void reduceStats(Runtime& rt, ChunkStats& st, Communicator& tp, cpu::Divergence d) {
  copyTensor(st.global_max, st.local_max);
  if (tp.size() == 1) return;
  tp.allReduceMax(st.global_max);
  Tensor xent_sum = st.xentSum(), kl_sums = st.klSums();
  ops::xentRescaleSums(rt, xent_sum, st.xentMax(), st.globalXentMax());
  ops::klRescaleSums(rt, kl_sums, st.klMax(), st.globalKlMax(), d);
  tp.allReduceSum(st.sums);
}

// The scored rows' cross-entropy and divergence, from the reduced statistics (staged to the
// host).
LossSums rowSums(const ChunkStats& st, const uint32_t* targets) {
  const int64_t n = st.n;
  const std::vector<float> maxes = toHost<float>(st.global_max), sums = toHost<float>(st.sums),
                           divergence = toHost<float>(st.divergence);
  LossSums out;
  for (int64_t i = 0; i < n; ++i) {
    if (targets[i] == kXentIgnore) continue;
    // As headForwardBackward: log S + M - z_target in double.
    out.ce_sum += std::log(double(sums[i])) + maxes[i] - sums[n + i];
    out.kl_sum += divergence[i];
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

LossSums kdDenseChunk(Runtime& rt, Tensor& student_logits, const Tensor& teacher_logits,
                      const uint32_t* targets, const cpu::VocabSlice& slice, Communicator& tp,
                      const KdParams& kd, float grad_scale) {
  const int64_t n = student_logits.dim(0);
  KDGRID_CHECK(
      teacher_logits.shape() == student_logits.shape() && student_logits.dim(1) == slice.size,
      "distillation: student logits {} and teacher logits {} differ (slice of {})",
      student_logits.describe(), teacher_logits.describe(), slice.size);
  const Tensor& zs = student_logits;
  const Tensor& zt = teacher_logits;
  const cpu::Divergence d = kd.divergence;
  ChunkStats st(rt, targets, n);
  Tensor xent_max = st.xentMax(), xent_sum = st.xentSum(), target_logit = st.targetLogit();
  Tensor kl_max = st.klMax(), kl_sums = st.klSums();
  ops::xentRowStats(rt, xent_max, xent_sum, target_logit, zs, st.targets, shardOf(slice));
  const float temperature = static_cast<float>(kd.temperature);
  ops::klRowStats(rt, kl_max, kl_sums, zs, zt, slice, temperature, d);
  reduceStats(rt, st, tp, d);
  if (d == cpu::Divergence::kJsd) {
    ops::klJsdTerms(rt, st.jsd_terms, zs, zt, st.globalKlMax(), st.klSums(), slice, temperature);
    if (tp.size() > 1) tp.allReduceSum(st.jsd_terms);
  }
  ops::klLoss(rt, st.divergence, st.klSums(), &st.jsd_terms, d);
  const LossSums out = rowSums(st, targets);
  if (grad_scale > 0) {
    checkTrainingTargets(targets, n);
    // One pass over the student's logits: alpha T^2 dD/dz + (1 - alpha) dCE/dz, in place.
    const Tensor global_xent_max = st.globalXentMax(), global_xent_sum = st.xentSum();
    const ops::XentTerm xent{&global_xent_max, &global_xent_sum, &st.targets,
                             ceScale(kd, grad_scale)};
    ops::klBackward(rt, student_logits, zs, zt, st.globalKlMax(), st.klSums(), st.divergence,
                    &st.jsd_terms, slice, temperature, d, kdScale(kd, grad_scale), &xent);
  }
  return out;
}

LossSums kdTopkChunk(Runtime& rt, Tensor& student_logits, const uint32_t* ids,
                     const float* logprobs, int64_t k, float teacher_scale,
                     const uint32_t* targets, const cpu::VocabSlice& slice, Communicator& tp,
                     const KdParams& kd, float grad_scale) {
  const int64_t n = student_logits.dim(0);
  const Tensor& zs = student_logits;
  const cpu::Divergence d = kd.divergence;
  ChunkStats st(rt, targets, n);
  Tensor ids_t = rt.pool.empty({n, k}, DType::kU32), logprobs_t = rt.pool.empty({n, k}, DType::kF32);
  copyFromHost(ids_t, ids);
  copyFromHost(logprobs_t, logprobs);
  Tensor xent_max = st.xentMax(), xent_sum = st.xentSum(), target_logit = st.targetLogit();
  Tensor kl_max = st.klMax(), kl_sums = st.klSums();
  ops::xentRowStats(rt, xent_max, xent_sum, target_logit, zs, st.targets, shardOf(slice));
  const float temperature = static_cast<float>(kd.temperature);
  ops::klTopkRowStats(rt, kl_max, kl_sums, zs, ids_t, logprobs_t, slice, temperature,
                      teacher_scale, d);
  reduceStats(rt, st, tp, d);
  if (d == cpu::Divergence::kJsd) {
    ops::klTopkJsdTerms(rt, st.jsd_terms, zs, ids_t, logprobs_t, st.globalKlMax(), st.klSums(),
                        slice, temperature, teacher_scale);
    if (tp.size() > 1) tp.allReduceSum(st.jsd_terms);
  }
  ops::klLoss(rt, st.divergence, st.klSums(), &st.jsd_terms, d);
  const LossSums out = rowSums(st, targets);
  if (grad_scale > 0) {
    checkTrainingTargets(targets, n);
    // The divergence's gradient lives on the k ids only: computed before cross-entropy's
    // in-place backward overwrites the logits, then added at those ids.
    Tensor grad_k = rt.pool.empty({n, k}, DType::kF32);
    ops::klTopkBackward(rt, grad_k, zs, ids_t, logprobs_t, st.globalKlMax(), st.klSums(),
                        st.divergence, &st.jsd_terms, slice, temperature, teacher_scale, d,
                        kdScale(kd, grad_scale));
    ops::xentBackwardInPlace(rt, student_logits, st.globalXentMax(), st.xentSum(), st.targets,
                             shardOf(slice), ceScale(kd, grad_scale));
    ops::klTopkScatterAdd(rt, student_logits, grad_k, ids_t, slice);
  }
  return out;
}

AgreementSums teacherAgreementChunk(Runtime& rt, const Tensor& student_logits,
                                    const Tensor& teacher_logits, const uint32_t* targets,
                                    const cpu::VocabSlice& slice, Communicator& tp) {
  const int64_t n = student_logits.dim(0);
  KDGRID_CHECK(
      teacher_logits.shape() == student_logits.shape() && student_logits.dim(1) == slice.size,
      "eval --teacher: student logits {} and teacher logits {} differ", student_logits.describe(),
      teacher_logits.describe());
  const cpu::Divergence d = cpu::Divergence::kForwardKl;
  ChunkStats st(rt, targets, n);
  Tensor xent_max = st.xentMax(), xent_sum = st.xentSum(), target_logit = st.targetLogit();
  Tensor kl_max = st.klMax(), kl_sums = st.klSums();
  ops::xentRowStats(rt, xent_max, xent_sum, target_logit, student_logits, st.targets,
                    shardOf(slice));
  ops::klRowStats(rt, kl_max, kl_sums, student_logits, teacher_logits, slice, 1.0f,
                  d);  // maxes: raw logits
  // The argmax search below reads the logits on the host (evaluation only): staged copies.
  const std::vector<float> zs_host = toHost<float>(student_logits);
  const std::vector<float> zt_host = toHost<float>(teacher_logits);
  const float* zs = zs_host.data();
  const float* zt = zt_host.data();
  // Lowest local column attaining each row's local max (student, teacher), as a candidate for
  // the global argmax: minus its global id, or the lowest int64 when this rank has none.
  const int64_t nv = std::clamp<int64_t>(slice.valid - slice.start, 0, slice.size);
  std::vector<int64_t> candidate(2 * n, std::numeric_limits<int64_t>::min());
  auto localArgmax = [&](const float* row, float max) {
    for (int64_t c = 0; c < nv; ++c)
      if (row[c] == max) return c;
    return int64_t{-1};
  };
  reduceStats(rt, st, tp, d);
  const std::vector<float> local_max = toHost<float>(st.local_max);
  const std::vector<float> global_max = toHost<float>(st.global_max);
  for (int64_t i = 0; i < n; ++i) {
    for (int which = 0; which < 2; ++which) {
      const float* row = (which == 0 ? zs : zt) + i * slice.size;
      const float lmax = local_max[n + which * n + i], gmax = global_max[n + which * n + i];
      if (nv == 0 || lmax != gmax) continue;
      candidate[which * n + i] = -(slice.start + localArgmax(row, lmax));
    }
  }
  if (tp.size() > 1) tp.allReduceMax(candidate.data(), candidate.size());
  ops::klLoss(rt, st.divergence, st.klSums(), nullptr, d);
  const LossSums sums = rowSums(st, targets);
  AgreementSums out{sums.ce_sum, sums.kl_sum, 0, sums.tokens};
  for (int64_t i = 0; i < n; ++i)
    if (targets[i] != kXentIgnore && candidate[i] == candidate[n + i]) out.agree += 1;
  return out;
}

}  // namespace kdgrid
