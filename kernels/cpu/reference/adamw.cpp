#include "kernels/cpu/reference/adamw.h"

#include <cmath>

#include "src/core/dtype.h"

namespace kdgrid::cpu::ref {

void adamwStep(float* param, float* m, float* v, const float* grad, int64_t n,
               const AdamWConfig& config, int64_t step, float grad_scale, bool apply_weight_decay) {
  const double b1 = config.beta1;
  const double b2 = config.beta2;
  const double bias1 = 1.0 - std::pow(b1, static_cast<double>(step));
  const double bias2 = 1.0 - std::pow(b2, static_cast<double>(step));
  const double wd = apply_weight_decay ? config.weight_decay : 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double g = static_cast<double>(grad[i]) * grad_scale;
    const double mi = b1 * m[i] + (1.0 - b1) * g;
    const double vi = b2 * v[i] + (1.0 - b2) * g * g;
    const double m_hat = mi / bias1;
    const double v_hat = vi / bias2;
    const double p = param[i];
    param[i] = static_cast<float>(p - static_cast<double>(config.lr) *
                                          (m_hat / (std::sqrt(v_hat) + config.eps) + wd * p));
    m[i] = static_cast<float>(mi);
    v[i] = static_cast<float>(vi);
  }
}

double sumSquares(const float* x, int64_t n) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(x[i]) * x[i];
  return s;
}

template <typename T>
bool allFinite(const T* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(toFloat(x[i]))) return false;
  }
  return true;
}

template bool allFinite<float>(const float*, int64_t);
template bool allFinite<bf16>(const bf16*, int64_t);
template bool allFinite<f16>(const f16*, int64_t);

}  // namespace kdgrid::cpu::ref
