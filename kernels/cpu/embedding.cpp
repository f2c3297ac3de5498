#include "kernels/cpu/embedding.h"

#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/cpu/detail/convert_simd.h"
#include "kernels/cpu/detail/parallel.h"
#include "src/core/dtype.h"

namespace kdgrid::cpu {

template <typename T>
void embeddingForward(T* out, const uint32_t* ids, const float* tok_emb, const float* pos_emb,
                      int64_t batch, int64_t seq, int64_t channels, int64_t vocab_start,
                      int64_t vocab_local, bool add_positions) {
  const int64_t rows = batch * seq;
#pragma omp parallel if (detail::worthParallel(rows * channels))
  {
    std::vector<float> scratch(std::is_same_v<T, float> ? 0 : channels);
#pragma omp for schedule(static)
    for (int64_t row = 0; row < rows; ++row) {
      const int64_t local = static_cast<int64_t>(ids[row]) - vocab_start;
      const float* tok = local >= 0 && local < vocab_local ? tok_emb + local * channels : nullptr;
      const float* pos = add_positions ? pos_emb + (row % seq) * channels : nullptr;
      T* dst = out + row * channels;
      float* o = detail::outF32(dst, scratch.data());
      if (tok && pos) {
#pragma omp simd
        for (int64_t c = 0; c < channels; ++c) o[c] = tok[c] + pos[c];
      } else if (tok || pos) {
        std::memcpy(o, tok ? tok : pos, static_cast<size_t>(channels) * sizeof(float));
      } else {
        std::memset(o, 0, static_cast<size_t>(channels) * sizeof(float));
      }
      detail::storeF32(dst, o, channels);
    }
  }
}

template <typename T>
void embeddingBackward(float* dtok_emb, float* dpos_emb, const T* dout, const uint32_t* ids,
                       int64_t batch, int64_t seq, int64_t channels, int64_t vocab_start,
                       int64_t vocab_local) {
  // Each channel slice is owned by one thread, which walks the rows in order: repeated ids
  // need no atomics and the sums come out in the same order on any thread count.
  constexpr int64_t kSlice = 64;
  const int64_t rows = batch * seq;
  const int64_t slices = detail::ceilDiv(channels, kSlice);
#pragma omp parallel for schedule(static) if (detail::worthParallel(rows * channels))
  for (int64_t s = 0; s < slices; ++s) {
    const int64_t c0 = s * kSlice;
    const int64_t width = c0 + kSlice < channels ? kSlice : channels - c0;
    float buf[kSlice];
    for (int64_t row = 0; row < rows; ++row) {
      const float* g = detail::loadF32(dout + row * channels + c0, width, buf);
      const int64_t local = static_cast<int64_t>(ids[row]) - vocab_start;
      if (local >= 0 && local < vocab_local) {
        float* dt = dtok_emb + local * channels + c0;
#pragma omp simd
        for (int64_t c = 0; c < width; ++c) dt[c] += g[c];
      }
      if (dpos_emb) {
        float* dp = dpos_emb + (row % seq) * channels + c0;
#pragma omp simd
        for (int64_t c = 0; c < width; ++c) dp[c] += g[c];
      }
    }
  }
}

#define KDGRID_INSTANTIATE_EMBEDDING(T)                                                           \
  template void embeddingForward<T>(T*, const uint32_t*, const float*, const float*, int64_t,     \
                                    int64_t, int64_t, int64_t, int64_t, bool);                    \
  template void embeddingBackward<T>(float*, float*, const T*, const uint32_t*, int64_t, int64_t, \
                                     int64_t, int64_t, int64_t);
KDGRID_INSTANTIATE_EMBEDDING(float)
KDGRID_INSTANTIATE_EMBEDDING(bf16)
KDGRID_INSTANTIATE_EMBEDDING(f16)
#undef KDGRID_INSTANTIATE_EMBEDDING

}  // namespace kdgrid::cpu
