// Reference decode attention and cache write: plain loops in double. Same layout and meaning
// as kernels/cpu/decode_attention.h; fp32 I/O.
#pragma once

#include <cstdint>

namespace kdgrid::cpu::ref {

void kvCacheWrite(float* k_cache, float* v_cache, const float* qkv, int64_t batch, int64_t n,
                  int64_t pos0, int64_t max_seq, int64_t channels, int64_t head_dim);

void decodeAttention(float* out, const float* qkv, const float* k_cache, const float* v_cache,
                     int64_t batch, int64_t len, int64_t max_seq, int64_t channels,
                     int64_t head_dim, int64_t window);

}  // namespace kdgrid::cpu::ref
