// Vocabulary-parallel distillation divergences (DESIGN section 8) between a student's and a
// teacher's logits at temperature T, in pieces around the caller's all-reduces over the
// tensor-parallel ranks, so that no rank holds full-vocabulary logits.
//
// Notation, per row: a = z_s / T and b = z_t / T over the global vocabulary, p_s = softmax(a),
// p_t = softmax(b) (natural log throughout):
//   forward_kl  D = KL(p_t || p_s) = sum p_t (log p_t - log p_s)
//   reverse_kl  D = KL(p_s || p_t)
//   jsd         D = (KL(p_t || m) + KL(p_s || m)) / 2,  m = (p_t + p_s) / 2
// d D / d z_s (what klBackward scales by row_scale):
//   forward_kl  (p_s - p_t) / T
//   reverse_kl  p_s (log p_s - log p_t - D) / T
//   jsd         p_s (log p_s - log m - KL(p_s || m)) / (2 T)
//
// Dense form: a rank holds student and teacher logits [N, V_local] (fp32, row-major) for the
// same global ids [start, start + V_local) (VocabSlice, cross_entropy.h); ids >= valid are
// vocabulary padding, never read (probability 0, gradient 0). Per step, on every tp rank:
//   1. klRowStats(local_max, local_sums, ...)          two sweeps over each row
//   2. global_max = all-reduce MAX of local_max            [kKlMaxes * N]
//   3. klRescaleSums(local_sums, local_max, global_max)    now relative to global_max
//   4. global_sums = all-reduce SUM of local_sums          [kKlSums * N]
//   5. jsd only: klJsdTerms(terms, ...); all-reduce SUM   [kJsdTerms * N]
//   6. klLoss(loss, global_sums, terms, ...)               D per row (nats)
//   7. klBackward(grad, ...)                               row_scale * d D / d z_s, optionally
//      plus the cross-entropy gradient in the same pass, in place over the student's logits
// The MAX and SUM reductions may be fused with cross-entropy's (append the arrays). With
// tp = 1 the reductions are copies and step 3 changes nothing.
//
// Top-k form (offline distillation): the teacher is k (global id, log-probability) pairs per
// row instead of logits. The teacher's distribution is renormalised over its k ids, and so is
// the student's: q_s(i) = p_s(i) / sum_{j in K} p_s(j) for i in K, where p_s is the student's
// softmax over the FULL vocabulary at temperature T. The full-vocabulary normaliser cancels,
// so q_s = softmax of a over the k ids alone, and D and its gradient live on those ids (the
// gradient is 0 at every other id). The teacher's values are b = teacher_scale * logprob:
// logprobs written at temperature T0 and used at T give the exact renormalised top-k
// distribution at T with teacher_scale = T0 / T. Each rank handles the pairs whose id falls
// in its slice; the same steps 1-6 apply, then klTopkBackward + klTopkScatterAdd.
//
// Statistics arrays are quantity-major ([k, N]: quantity q of row r at q * N + r) so each
// reduction is one contiguous buffer. Rows are independent; results do not depend on the
// OpenMP thread count. No row masking: every row is scored (callers skip rows they ignore).
#pragma once

#include <cstdint>

#include "kernels/cpu/cross_entropy.h"

namespace kdgrid::cpu {

enum class Divergence : uint8_t {
  kForwardKl,  // KL(p_t || p_s), DESIGN's default
  kReverseKl,  // KL(p_s || p_t)
  kJsd,        // Jensen-Shannon, m = (p_t + p_s) / 2
};

// Per-row quantities of the statistics arrays.
inline constexpr int kKlMaxes = 2;   // max a, max b
inline constexpr int kKlSums = 3;    // sum exp(a - max a), sum exp(b - max b), cross term
inline constexpr int kJsdTerms = 2;  // KL(p_t || m), KL(p_s || m)

// Step 1, dense. local_max [2, N]: max of a and of b over this rank's valid columns (-inf if
// none). local_sums [3, N]: sum exp(a - max a), sum exp(b - max b), and the cross term X =
// sum exp(b - max b) ((b - max b) - (a - max a)) for forward_kl, the same with a and b
// swapped for reverse_kl, 0 for jsd. temperature > 0.
void klRowStats(float* local_max, float* local_sums, const float* student, const float* teacher,
                int64_t rows, const VocabSlice& slice, float temperature, Divergence d);

// Step 3: rescales local_sums [3, N] in place from this rank's maxima to the global ones, so
// that the SUM all-reduce adds like terms (the cross term also shifts by the change of the
// maxima).
void klRescaleSums(float* sums, const float* local_max, const float* global_max, int64_t rows,
                   Divergence d);

// Step 5 (jsd only), dense: terms [2, N] = this rank's share of KL(p_t || m) and KL(p_s || m).
void klJsdTerms(float* terms, const float* student, const float* teacher, const float* global_max,
                const float* global_sums, int64_t rows, const VocabSlice& slice, float temperature);

// Step 6: loss [N] (overwritten) = D per row, nats (computed in double from the reduced
// statistics). jsd_terms: the reduced klJsdTerms for jsd, ignored (may be null) otherwise.
void klLoss(float* loss, const float* global_sums, const float* jsd_terms, int64_t rows,
            Divergence d);

// The cross-entropy term of a combined loss, added to the divergence's gradient in the same
// pass: row_scale * (softmax(z_s) - onehot(target)) at temperature 1, from the reduced
// xentRowStats statistics (cross_entropy.h); rows with kXentIgnore targets add nothing.
struct XentGradTerm {
  const float* global_max = nullptr;  // [N]
  const float* global_sum = nullptr;  // [N]
  const uint32_t* targets = nullptr;  // [N]
  float row_scale = 0;
};

// Step 7, dense: grad [N, V_local] (overwritten) = row_scale * d D / d z_s, plus the
// cross-entropy gradient when `xent` is given; padding columns become 0. grad may be
// `student` itself (in place: each element is read before it is written). divergence: klLoss's
// output (reverse_kl), jsd_terms: the reduced terms (jsd); unused ones may be null.
void klBackward(float* grad, const float* student, const float* teacher, const float* global_max,
                const float* global_sums, const float* divergence, const float* jsd_terms,
                int64_t rows, const VocabSlice& slice, float temperature, Divergence d,
                float row_scale, const XentGradTerm* xent = nullptr);

// --- top-k form. ids and logprobs are [N, k]; ids are global vocabulary ids (those outside
// this rank's slice are skipped; every id must be < slice.valid, checked). ---

// Step 1, top-k: as klRowStats over the pairs whose id this rank holds, with a = z_s[id] / T
// and b = teacher_scale * logprob.
void klTopkRowStats(float* local_max, float* local_sums, const float* student, const uint32_t* ids,
                    const float* logprobs, int64_t k, int64_t rows, const VocabSlice& slice,
                    float temperature, float teacher_scale, Divergence d);

// Step 5, top-k (jsd only).
void klTopkJsdTerms(float* terms, const float* student, const uint32_t* ids, const float* logprobs,
                    int64_t k, const float* global_max, const float* global_sums, int64_t rows,
                    const VocabSlice& slice, float temperature, float teacher_scale);

// Step 7, top-k: grad_k [N, k] (overwritten) = row_scale * d D / d z_s at ids[r, j] when this
// rank holds that id, else 0. Reads the student's logits, so call it before anything
// overwrites them (e.g. xentBackwardInPlace), then add grad_k with klTopkScatterAdd.
void klTopkBackward(float* grad_k, const float* student, const uint32_t* ids, const float* logprobs,
                    int64_t k, const float* global_max, const float* global_sums,
                    const float* divergence, const float* jsd_terms, int64_t rows,
                    const VocabSlice& slice, float temperature, float teacher_scale, Divergence d,
                    float row_scale);

// grad [N, V_local] += grad_k [N, k] at the local columns of ids (other ids skipped).
void klTopkScatterAdd(float* grad, const float* grad_k, const uint32_t* ids, int64_t k,
                      int64_t rows, const VocabSlice& slice);

}  // namespace kdgrid::cpu
