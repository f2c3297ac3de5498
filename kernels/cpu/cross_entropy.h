// Vocabulary-parallel softmax cross-entropy on the LM head's logits, in pieces around the
// caller's reductions over the tensor-parallel ranks, so that no rank holds full-vocabulary
// logits and the logits buffer is reused for its own gradient.
//
// A rank holds logits [N, V_local] (fp32, row-major, N = tokens) for the global vocabulary ids
// [start, start + V_local) (VocabSlice). When the vocabulary is padded to a multiple of tp,
// ids >= vocab_valid are padding: their logits are never read and count as -inf (probability
// 0, gradient 0). targets [N] are global ids < vocab_valid, or kXentIgnore for rows that carry
// no loss (padding tokens): loss 0, gradient 0.
//
// Per step, on every tensor-parallel rank (m, s, z, M, S, Z are [N] fp32 arrays):
//   1. xentRowStats(m, s, z, logits, ...)   one read of the logits
//   2. M = all-reduce MAX of m
//   3. xentRescaleSums(s, m, M)              now s = sum over local ids of exp(logit - M)
//   4. S = all-reduce SUM of s;  Z = all-reduce SUM of z
//   5. xentLoss(loss, M, S, Z, targets)      loss = log S + M - Z (nats)
//   6. xentBackwardInPlace(logits, M, S, targets, ..., row_scale)
// With tp = 1 the reductions are copies (m is M, s is S, z is Z).
#pragma once

#include <cstdint>

namespace kdgrid::cpu {

// Target value of a row that carries no loss.
inline constexpr uint32_t kXentIgnore = UINT32_MAX;

// The columns of one rank's logits: local column c holds global id start + c, c < size; ids
// >= valid (the real vocabulary size) are padding.
struct VocabSlice {
  int64_t start = 0;
  int64_t size = 0;   // V_local, padding included
  int64_t valid = 0;  // vocab_size
};

// Per row r (all outputs [N] fp32, overwritten), over this rank's non-padding columns:
// local_max[r] = max logit (-inf if the rank holds only padding), local_sum[r] =
// sum exp(logit - local_max[r]) (0 if none), target_logit[r] = logits[r][targets[r] - start]
// when this rank holds targets[r], else 0. Ignored rows are not read: 0, 0, 0.
// Checks that every target is < slice.valid or kXentIgnore.
void xentRowStats(float* local_max, float* local_sum, float* target_logit, const float* logits,
                  const uint32_t* targets, int64_t rows, const VocabSlice& slice);

// After the MAX all-reduce: sums[r] *= exp(local_max[r] - global_max[r]) (in place), so it is
// this rank's sum of exp(logit - global_max) ready for the SUM all-reduce.
void xentRescaleSums(float* sums, const float* local_max, const float* global_max, int64_t rows);

// loss [N] (overwritten, nats) = log(global_sum) + global_max - target_logit (all reduced);
// 0 for ignored rows.
void xentLoss(float* loss, const float* global_max, const float* global_sum,
              const float* target_logit, const uint32_t* targets, int64_t rows);

// Overwrites logits [N, V_local] with d (sum_r row_scale * loss_r) / d logits =
// (softmax - onehot(target)) * row_scale for this rank's columns; padding columns and ignored
// rows become 0. row_scale is e.g. 1 / (number of non-ignored tokens) or loss_scale / tokens.
// Needs no buffer besides the logits.
void xentBackwardInPlace(float* logits, const float* global_max, const float* global_sum,
                         const uint32_t* targets, int64_t rows, const VocabSlice& slice,
                         float row_scale);

}  // namespace kdgrid::cpu
