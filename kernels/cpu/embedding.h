// Token + position embedding (GPT-2 wte + wpe), vocabulary-parallel aware, fast CPU version.
// Reference: cpu/reference/embedding.h. T in {float, bf16, f16} (the output); the tables are
// fp32 parameters.
//
// Tensor parallelism: this rank holds rows [vocab_start, vocab_start + vocab_local) of the
// token table. A token id outside that range contributes zero here; the caller all-reduces
// the outputs over the tensor-parallel ranks. Position embeddings are replicated, so exactly
// one designated rank adds them in the forward pass (add_positions). Ids must be below the
// full vocabulary size: the model checks them before calling.
#pragma once

#include <cstdint>

namespace kdgrid::cpu {

// out[b*seq + t, c] = tok_emb[ids[b, t] - vocab_start, c]   (if the id is in this rank's range)
//                   + pos_emb[t, c]                          (if add_positions)
//   ids: (batch, seq) uint32 token ids; out: (batch * seq, channels) T, OVERWRITTEN.
//   tok_emb: (vocab_local, channels) fp32, this rank's rows.
//   pos_emb: (>= seq, channels) fp32, row t = position t; may be nullptr if !add_positions.
template <typename T>
void embeddingForward(T* out, const uint32_t* ids, const float* tok_emb, const float* pos_emb,
                      int64_t batch, int64_t seq, int64_t channels, int64_t vocab_start,
                      int64_t vocab_local, bool add_positions);

// Backward, parameter gradients ACCUMULATED (+=):
//   dtok_emb[id - vocab_start, c] += dout[b*seq + t, c] for every (b, t) whose id is local;
//   dpos_emb[t, c] += sum_b dout[b*seq + t, c], when dpos_emb is not nullptr.
//   dout: (batch * seq, channels) T; dtok_emb: (vocab_local, channels) fp32;
//   dpos_emb: (>= seq, channels) fp32 or nullptr.
// After the forward all-reduce every tensor-parallel rank sees the same dout, so every rank
// that holds a replica of pos_emb should pass dpos_emb to keep the replicas identical.
// Parallel over channel slices, each summing tokens in order: deterministic, no atomics.
template <typename T>
void embeddingBackward(float* dtok_emb, float* dpos_emb, const T* dout, const uint32_t* ids,
                       int64_t batch, int64_t seq, int64_t channels, int64_t vocab_start,
                       int64_t vocab_local);

}  // namespace kdgrid::cpu
