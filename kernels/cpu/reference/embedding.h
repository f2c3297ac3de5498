// Scalar reference for cpu/embedding.h: same contract, plain loops. Real in {float, double}.
#pragma once

#include <cstdint>

namespace kdgrid::cpu::ref {

// out[b*seq + t, :] = (id local ? tok_emb[id - vocab_start, :] : 0) + (add_positions ?
// pos_emb[t, :] : 0); out overwritten.
template <typename Real>
void embeddingForward(Real* out, const uint32_t* ids, const Real* tok_emb, const Real* pos_emb,
                      int64_t batch, int64_t seq, int64_t channels, int64_t vocab_start,
                      int64_t vocab_local, bool add_positions);

// dtok_emb (local rows) += dout rows of local ids; dpos_emb (if not nullptr) += dout summed
// over the batch.
template <typename Real>
void embeddingBackward(Real* dtok_emb, Real* dpos_emb, const Real* dout, const uint32_t* ids,
                       int64_t batch, int64_t seq, int64_t channels, int64_t vocab_start,
                       int64_t vocab_local);

}  // namespace kdgrid::cpu::ref
