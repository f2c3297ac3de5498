// Reference causal (windowed) multi-head attention: plain loops in double, storing the full
// probability rows per query. Same layout and meaning as kernels/cpu/attention.h; F is the
// I/O type (float for fast-vs-reference tests, double for finite-difference checks).
#pragma once

#include <cstdint>

namespace kdgrid::cpu::ref {

// out [B, T, C] (overwritten), lse [B, nh, T] (overwritten; may be nullptr) from qkv [B, T, 3C].
template <typename F>
void attentionForward(F* out, F* lse, const F* qkv, int64_t batch, int64_t seq, int64_t channels,
                      int64_t head_dim, int64_t window);

// dqkv [B, T, 3C] (overwritten) from dout [B, T, C] and qkv; everything recomputed from qkv.
template <typename F>
void attentionBackward(F* dqkv, const F* dout, const F* qkv, int64_t batch, int64_t seq,
                       int64_t channels, int64_t head_dim, int64_t window);

}  // namespace kdgrid::cpu::ref
