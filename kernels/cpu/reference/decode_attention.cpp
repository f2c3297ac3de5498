#include "kernels/cpu/reference/decode_attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace kdgrid::cpu::ref {

void kvCacheWrite(float* k_cache, float* v_cache, const float* qkv, int64_t batch, int64_t n,
                  int64_t pos0, int64_t max_seq, int64_t channels, int64_t head_dim) {
  const int64_t nh = channels / head_dim;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < n; ++t)
      for (int64_t h = 0; h < nh; ++h)
        for (int64_t c = 0; c < head_dim; ++c) {
          const int64_t src = (b * n + t) * 3 * channels + h * head_dim + c;
          const int64_t dst = ((b * nh + h) * max_seq + pos0 + t) * head_dim + c;
          k_cache[dst] = qkv[src + channels];
          v_cache[dst] = qkv[src + 2 * channels];
        }
}

void decodeAttention(float* out, const float* qkv, const float* k_cache, const float* v_cache,
                     int64_t batch, int64_t len, int64_t max_seq, int64_t channels,
                     int64_t head_dim, int64_t window) {
  const int64_t nh = channels / head_dim;
  const double scale = 1.0 / std::sqrt(double(head_dim));
  const int64_t first = window > 0 ? std::max<int64_t>(0, len - window) : 0;
  std::vector<double> p;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < nh; ++h) {
      const float* q = qkv + b * 3 * channels + h * head_dim;
      const int64_t head = (b * nh + h) * max_seq;
      p.clear();
      for (int64_t j = first; j < len; ++j) {
        double s = 0;
        for (int64_t c = 0; c < head_dim; ++c) s += double(q[c]) * k_cache[(head + j) * head_dim + c];
        p.push_back(s * scale);
      }
      const double m = *std::max_element(p.begin(), p.end());
      double sum = 0;
      for (double& x : p) sum += (x = std::exp(x - m));
      for (int64_t c = 0; c < head_dim; ++c) {
        double o = 0;
        for (int64_t j = first; j < len; ++j) o += p[j - first] * v_cache[(head + j) * head_dim + c];
        out[b * channels + h * head_dim + c] = float(o / sum);
      }
    }
}

}  // namespace kdgrid::cpu::ref
