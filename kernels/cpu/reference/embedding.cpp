#include "kernels/cpu/reference/embedding.h"

namespace kdgrid::cpu::ref {

template <typename Real>
void embeddingForward(Real* out, const uint32_t* ids, const Real* tok_emb, const Real* pos_emb,
                      int64_t batch, int64_t seq, int64_t channels, int64_t vocab_start,
                      int64_t vocab_local, bool add_positions) {
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t t = 0; t < seq; ++t) {
      const int64_t row = b * seq + t;
      const int64_t local = static_cast<int64_t>(ids[row]) - vocab_start;
      const bool mine = local >= 0 && local < vocab_local;
      for (int64_t c = 0; c < channels; ++c) {
        Real v = 0;
        if (mine) v += tok_emb[local * channels + c];
        if (add_positions) v += pos_emb[t * channels + c];
        out[row * channels + c] = v;
      }
    }
  }
}

template <typename Real>
void embeddingBackward(Real* dtok_emb, Real* dpos_emb, const Real* dout, const uint32_t* ids,
                       int64_t batch, int64_t seq, int64_t channels, int64_t vocab_start,
                       int64_t vocab_local) {
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t t = 0; t < seq; ++t) {
      const int64_t row = b * seq + t;
      const int64_t local = static_cast<int64_t>(ids[row]) - vocab_start;
      for (int64_t c = 0; c < channels; ++c) {
        const Real g = dout[row * channels + c];
        if (local >= 0 && local < vocab_local) dtok_emb[local * channels + c] += g;
        if (dpos_emb) dpos_emb[t * channels + c] += g;
      }
    }
  }
}

template void embeddingForward<float>(float*, const uint32_t*, const float*, const float*, int64_t,
                                      int64_t, int64_t, int64_t, int64_t, bool);
template void embeddingForward<double>(double*, const uint32_t*, const double*, const double*,
                                       int64_t, int64_t, int64_t, int64_t, int64_t, bool);
template void embeddingBackward<float>(float*, float*, const float*, const uint32_t*, int64_t,
                                       int64_t, int64_t, int64_t, int64_t);
template void embeddingBackward<double>(double*, double*, const double*, const uint32_t*, int64_t,
                                        int64_t, int64_t, int64_t, int64_t);

}  // namespace kdgrid::cpu::ref
