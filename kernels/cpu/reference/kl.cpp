#include "kernels/cpu/reference/kl.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace kdgrid::cpu::ref {
namespace {

// log-softmax of x [n] in double.
std::vector<double> logSoftmax(const std::vector<double>& x) {
  const double m = *std::max_element(x.begin(), x.end());
  double s = 0;
  for (double v : x) s += std::exp(v - m);
  const double lse = m + std::log(s);
  std::vector<double> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = x[i] - lse;
  return out;
}

// D(p_t, p_s) from log-probabilities lt, ls over one support, and (when grad is non-null)
// d D / d a for student logits a with ls = log-softmax(a) over that support.
double divergence(const std::vector<double>& lt, const std::vector<double>& ls, Divergence d,
                  std::vector<double>* grad) {
  const size_t n = lt.size();
  std::vector<double> pt(n), ps(n), lm(n);
  for (size_t i = 0; i < n; ++i) {
    pt[i] = std::exp(lt[i]);
    ps[i] = std::exp(ls[i]);
    const double hi = std::max(lt[i], ls[i]), lo = std::min(lt[i], ls[i]);
    lm[i] = hi + std::log1p(std::exp(lo - hi)) - std::log(2.0);  // log((p_t + p_s) / 2)
  }
  double value = 0, ks = 0;  // ks = KL(p_s || m) for jsd
  for (size_t i = 0; i < n; ++i) {
    switch (d) {
      case Divergence::kForwardKl:
        value += pt[i] * (lt[i] - ls[i]);
        break;
      case Divergence::kReverseKl:
        value += ps[i] * (ls[i] - lt[i]);
        break;
      case Divergence::kJsd:
        value += 0.5 * (pt[i] * (lt[i] - lm[i]) + ps[i] * (ls[i] - lm[i]));
        ks += ps[i] * (ls[i] - lm[i]);
        break;
    }
  }
  if (grad) {
    grad->resize(n);
    for (size_t i = 0; i < n; ++i) {
      switch (d) {
        case Divergence::kForwardKl:
          (*grad)[i] = ps[i] - pt[i];
          break;
        case Divergence::kReverseKl:
          (*grad)[i] = ps[i] * (ls[i] - lt[i] - value);
          break;
        case Divergence::kJsd:
          (*grad)[i] = 0.5 * ps[i] * (ls[i] - lm[i] - ks);
          break;
      }
    }
  }
  return value;
}

template <typename F>
std::vector<double> scaledRow(const F* x, int64_t n, double scale) {
  std::vector<double> out(n);
  for (int64_t i = 0; i < n; ++i) out[i] = double(x[i]) * scale;
  return out;
}

// The student's log-probabilities at the k ids, renormalised, literally: log-softmax over the
// full vocabulary, gathered, then log-normalised again over the k ids.
template <typename F>
std::vector<double> studentTopk(const F* row, const uint32_t* ids, int64_t k, int64_t vocab,
                                double temperature) {
  const std::vector<double> full = logSoftmax(scaledRow(row, vocab, 1.0 / temperature));
  std::vector<double> gathered(k);
  for (int64_t j = 0; j < k; ++j) gathered[j] = full[ids[j]];
  return logSoftmax(gathered);
}

}  // namespace

template <typename F>
void klForward(F* loss, const F* student, const F* teacher, int64_t rows, int64_t vocab,
               double temperature, Divergence d) {
  for (int64_t r = 0; r < rows; ++r) {
    const auto ls = logSoftmax(scaledRow(student + r * vocab, vocab, 1.0 / temperature));
    const auto lt = logSoftmax(scaledRow(teacher + r * vocab, vocab, 1.0 / temperature));
    loss[r] = F(divergence(lt, ls, d, nullptr));
  }
}

template <typename F>
void klBackward(F* dstudent, const F* student, const F* teacher, int64_t rows, int64_t vocab,
                double temperature, Divergence d, double row_scale) {
  std::vector<double> g;
  for (int64_t r = 0; r < rows; ++r) {
    const auto ls = logSoftmax(scaledRow(student + r * vocab, vocab, 1.0 / temperature));
    const auto lt = logSoftmax(scaledRow(teacher + r * vocab, vocab, 1.0 / temperature));
    divergence(lt, ls, d, &g);
    for (int64_t c = 0; c < vocab; ++c) dstudent[r * vocab + c] = F(row_scale * g[c] / temperature);
  }
}

template <typename F>
void klTopkForward(F* loss, const F* student, const uint32_t* ids, const F* logprobs, int64_t k,
                   int64_t rows, int64_t vocab, double temperature, double teacher_scale,
                   Divergence d) {
  for (int64_t r = 0; r < rows; ++r) {
    const auto ls = studentTopk(student + r * vocab, ids + r * k, k, vocab, temperature);
    const auto lt = logSoftmax(scaledRow(logprobs + r * k, k, teacher_scale));
    loss[r] = F(divergence(lt, ls, d, nullptr));
  }
}

template <typename F>
void klTopkBackward(F* dstudent, const F* student, const uint32_t* ids, const F* logprobs,
                    int64_t k, int64_t rows, int64_t vocab, double temperature,
                    double teacher_scale, Divergence d, double row_scale) {
  std::vector<double> g;
  for (int64_t r = 0; r < rows; ++r) {
    const auto ls = studentTopk(student + r * vocab, ids + r * k, k, vocab, temperature);
    const auto lt = logSoftmax(scaledRow(logprobs + r * k, k, teacher_scale));
    divergence(lt, ls, d, &g);
    F* out = dstudent + r * vocab;
    std::fill(out, out + vocab, F(0));
    for (int64_t j = 0; j < k; ++j) out[ids[r * k + j]] += F(row_scale * g[j] / temperature);
  }
}

#define KDGRID_KL_REF_INSTANTIATE(F)                                                         \
  template void klForward<F>(F*, const F*, const F*, int64_t, int64_t, double, Divergence);  \
  template void klBackward<F>(F*, const F*, const F*, int64_t, int64_t, double, Divergence,  \
                              double);                                                       \
  template void klTopkForward<F>(F*, const F*, const uint32_t*, const F*, int64_t, int64_t,  \
                                 int64_t, double, double, Divergence);                       \
  template void klTopkBackward<F>(F*, const F*, const uint32_t*, const F*, int64_t, int64_t, \
                                  int64_t, double, double, Divergence, double);
KDGRID_KL_REF_INSTANTIATE(float)
KDGRID_KL_REF_INSTANTIATE(double)
#undef KDGRID_KL_REF_INSTANTIATE

}  // namespace kdgrid::cpu::ref
