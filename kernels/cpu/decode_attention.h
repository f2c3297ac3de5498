// Attention of one new query per sequence over a key/value cache (autoregressive decoding),
// for one tensor-parallel rank, optional sliding window.
//
// Sizes: B = batch (sequences decoded together), C = channels (this rank's share of d_model),
// hd = head_dim, nh = C / hd local heads, S = max_seq (cache capacity in positions). Scale
// 1/sqrt(hd), window W as kernels/cpu/attention.h: 0 = full causal; W > 0: the query at
// position p attends positions max(0, p-W+1)..p.
//
// Cache layout, per layer: k_cache and v_cache [B, nh, S, hd] in the storage type T; position
// t of head h of sequence b at ((b * nh + h) * S + t) * hd. A head's keys are contiguous rows,
// so a query walks them in order.
//
// qkv rows are the QKV projection output as in kernels/cpu/attention.h: Q for the local heads
// in columns [0, C), K in [C, 2C), V in [2C, 3C), head h owning columns h*hd..(h+1)*hd-1.
//
// Math in fp32 (storage converted on load, rounded to nearest even on store), the softmax
// exact over the row (every attended score is formed before the max is taken). OpenMP threads
// share the B * nh (sequence, head) pairs when there is enough work.
#pragma once

#include <cstdint>

namespace kdgrid::cpu {

// Copies K and V of qkv [B, n, 3C] into cache positions pos0..pos0+n-1 of every (b, h):
// k_cache[b, h, pos0 + t, :] = qkv[b, t, C + h*hd : C + (h+1)*hd], v likewise from [2C, 3C).
// Requires 0 <= pos0 and pos0 + n <= S. Other cache positions are not touched.
template <typename T>
void kvCacheWrite(T* k_cache, T* v_cache, const T* qkv, int64_t batch, int64_t n, int64_t pos0,
                  int64_t max_seq, int64_t channels, int64_t head_dim);

// out [B, C] (overwritten) = softmax(q . K^T / sqrt(hd)) V per head, for the query q of each
// sequence (Q columns of qkv [B, 3C]) sitting at position len - 1, over cache positions
// max(0, len-W)..len-1 (W = 0: 0..len-1). Requires 1 <= len <= S; positions >= len are never
// read (they may hold anything).
template <typename T>
void decodeAttention(T* out, const T* qkv, const T* k_cache, const T* v_cache, int64_t batch,
                     int64_t len, int64_t max_seq, int64_t channels, int64_t head_dim,
                     int64_t window);

}  // namespace kdgrid::cpu
