#include "kernels/cpu/reference/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace kdgrid::cpu::ref {
namespace {

struct Layout {
  int64_t seq, channels, hd, window;
  const double scale;
  double q(const auto* qkv, int64_t b, int64_t t, int64_t h, int64_t c) const {
    return qkv[(b * seq + t) * 3 * channels + h * hd + c];
  }
  double k(const auto* qkv, int64_t b, int64_t t, int64_t h, int64_t c) const {
    return qkv[(b * seq + t) * 3 * channels + channels + h * hd + c];
  }
  double v(const auto* qkv, int64_t b, int64_t t, int64_t h, int64_t c) const {
    return qkv[(b * seq + t) * 3 * channels + 2 * channels + h * hd + c];
  }
  int64_t first(int64_t i) const { return window > 0 ? std::max<int64_t>(0, i - window + 1) : 0; }

  // Probabilities p[j - first(i)] of query i over keys first(i)..i; returns the log-sum-exp.
  template <typename F>
  double probs(const F* qkv, int64_t b, int64_t h, int64_t i, std::vector<double>& p) const {
    p.clear();
    for (int64_t j = first(i); j <= i; ++j) {
      double s = 0;
      for (int64_t c = 0; c < hd; ++c) s += q(qkv, b, i, h, c) * k(qkv, b, j, h, c);
      p.push_back(s * scale);
    }
    const double m = *std::max_element(p.begin(), p.end());
    double sum = 0;
    for (double& x : p) sum += (x = std::exp(x - m));
    for (double& x : p) x /= sum;
    return m + std::log(sum);
  }
};

}  // namespace

template <typename F>
void attentionForward(F* out, F* lse, const F* qkv, int64_t batch, int64_t seq, int64_t channels,
                      int64_t head_dim, int64_t window) {
  const Layout L{seq, channels, head_dim, window, 1.0 / std::sqrt(double(head_dim))};
  const int64_t nh = channels / head_dim;
  std::vector<double> p;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < nh; ++h)
      for (int64_t i = 0; i < seq; ++i) {
        const double l = L.probs(qkv, b, h, i, p);
        if (lse) lse[(b * nh + h) * seq + i] = F(l);
        for (int64_t c = 0; c < head_dim; ++c) {
          double o = 0;
          for (int64_t j = L.first(i); j <= i; ++j) o += p[j - L.first(i)] * L.v(qkv, b, j, h, c);
          out[(b * seq + i) * channels + h * head_dim + c] = F(o);
        }
      }
}

template <typename F>
void attentionBackward(F* dqkv, const F* dout, const F* qkv, int64_t batch, int64_t seq,
                       int64_t channels, int64_t head_dim, int64_t window) {
  const Layout L{seq, channels, head_dim, window, 1.0 / std::sqrt(double(head_dim))};
  const int64_t nh = channels / head_dim;
  std::vector<double> grad(batch * seq * 3 * channels, 0.0);  // same layout as qkv
  auto g = [&](int64_t b, int64_t t, int64_t part, int64_t h, int64_t c) -> double& {
    return grad[(b * seq + t) * 3 * channels + part * channels + h * head_dim + c];
  };
  std::vector<double> p, dp;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < nh; ++h)
      for (int64_t i = 0; i < seq; ++i) {
        L.probs(qkv, b, h, i, p);
        const F* go = dout + (b * seq + i) * channels + h * head_dim;
        const int64_t j0 = L.first(i);
        // dP_ij = dO_i . V_j; D_i = sum_j P_ij dP_ij (= dO_i . O_i).
        dp.assign(p.size(), 0.0);
        double dsum = 0;
        for (int64_t j = j0; j <= i; ++j) {
          for (int64_t c = 0; c < head_dim; ++c) dp[j - j0] += go[c] * L.v(qkv, b, j, h, c);
          dsum += p[j - j0] * dp[j - j0];
        }
        for (int64_t j = j0; j <= i; ++j) {
          const double pj = p[j - j0];
          const double ds = pj * (dp[j - j0] - dsum) * L.scale;  // d loss / d (q_i . k_j)
          for (int64_t c = 0; c < head_dim; ++c) {
            g(b, i, 0, h, c) += ds * L.k(qkv, b, j, h, c);
            g(b, j, 1, h, c) += ds * L.q(qkv, b, i, h, c);
            g(b, j, 2, h, c) += pj * go[c];
          }
        }
      }
  for (size_t n = 0; n < grad.size(); ++n) dqkv[n] = F(grad[n]);
}

template void attentionForward<float>(float*, float*, const float*, int64_t, int64_t, int64_t,
                                      int64_t, int64_t);
template void attentionForward<double>(double*, double*, const double*, int64_t, int64_t, int64_t,
                                       int64_t, int64_t);
template void attentionBackward<float>(float*, const float*, const float*, int64_t, int64_t,
                                       int64_t, int64_t, int64_t);
template void attentionBackward<double>(double*, const double*, const double*, int64_t, int64_t,
                                        int64_t, int64_t, int64_t);

}  // namespace kdgrid::cpu::ref
