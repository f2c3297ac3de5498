#include "kernels/cpu/reference/cross_entropy.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/cross_entropy.h"

namespace kdgrid::cpu::ref {
namespace {

template <typename F>
double logSumExp(const F* row, int64_t vocab) {
  double m = row[0];
  for (int64_t c = 1; c < vocab; ++c) m = std::max(m, double(row[c]));
  double s = 0;
  for (int64_t c = 0; c < vocab; ++c) s += std::exp(double(row[c]) - m);
  return m + std::log(s);
}

}  // namespace

template <typename F>
void crossEntropyForward(F* loss, const F* logits, const uint32_t* targets, int64_t rows,
                         int64_t vocab) {
  for (int64_t r = 0; r < rows; ++r) {
    const F* row = logits + r * vocab;
    loss[r] = targets[r] == kXentIgnore ? F(0) : F(logSumExp(row, vocab) - double(row[targets[r]]));
  }
}

template <typename F>
void crossEntropyBackward(F* dlogits, const F* logits, const uint32_t* targets, int64_t rows,
                          int64_t vocab, double row_scale) {
  for (int64_t r = 0; r < rows; ++r) {
    const F* row = logits + r * vocab;
    F* grad = dlogits + r * vocab;
    if (targets[r] == kXentIgnore) {
      std::fill(grad, grad + vocab, F(0));
      continue;
    }
    const double lse = logSumExp(row, vocab);
    for (int64_t c = 0; c < vocab; ++c) {
      const double onehot = c == int64_t(targets[r]) ? 1.0 : 0.0;
      grad[c] = F((std::exp(double(row[c]) - lse) - onehot) * row_scale);
    }
  }
}

template void crossEntropyForward<float>(float*, const float*, const uint32_t*, int64_t, int64_t);
template void crossEntropyForward<double>(double*, const double*, const uint32_t*, int64_t,
                                          int64_t);
template void crossEntropyBackward<float>(float*, const float*, const uint32_t*, int64_t, int64_t,
                                          double);
template void crossEntropyBackward<double>(double*, const double*, const uint32_t*, int64_t,
                                           int64_t, double);

}  // namespace kdgrid::cpu::ref
