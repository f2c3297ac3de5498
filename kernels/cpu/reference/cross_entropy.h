// Reference softmax cross-entropy over the full vocabulary on one rank, in double. F is the
// I/O type (float for fast-vs-reference tests, double for finite-difference checks).
#pragma once

#include <cstdint>

namespace kdgrid::cpu::ref {

// loss [N] (overwritten, nats) = logsumexp(logits[r, :]) - logits[r, targets[r]] for logits
// [N, vocab]; 0 where targets[r] is kXentIgnore (cpu/cross_entropy.h).
template <typename F>
void crossEntropyForward(F* loss, const F* logits, const uint32_t* targets, int64_t rows,
                         int64_t vocab);

// dlogits [N, vocab] (overwritten) = (softmax(logits[r, :]) - onehot(targets[r])) * row_scale;
// 0 rows where the target is ignored.
template <typename F>
void crossEntropyBackward(F* dlogits, const F* logits, const uint32_t* targets, int64_t rows,
                          int64_t vocab, double row_scale);

}  // namespace kdgrid::cpu::ref
