#include "kernels/cpu/reference/gelu.h"

#include <cmath>
#include <numbers>

namespace kdgrid::cpu::ref {

namespace {

const double kSqrt2OverPi = std::sqrt(2.0 / std::numbers::pi);
constexpr double kCubic = 0.044715;

}  // namespace

template <typename Real>
void geluForward(Real* out, const Real* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[i];
    out[i] =
        static_cast<Real>(0.5 * v * (1.0 + std::tanh(kSqrt2OverPi * (v + kCubic * v * v * v))));
  }
}

// d/dx: 0.5 * (1 + t) + 0.5 * x * (1 - t^2) * sqrt(2/pi) * (1 + 3 * 0.044715 * x^2),
// t = tanh(sqrt(2/pi) * (x + 0.044715 x^3)).
template <typename Real>
void geluBackward(Real* dx, const Real* dout, const Real* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[i];
    const double t = std::tanh(kSqrt2OverPi * (v + kCubic * v * v * v));
    const double d =
        0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * kSqrt2OverPi * (1.0 + 3.0 * kCubic * v * v);
    dx[i] = static_cast<Real>(dout[i] * d);
  }
}

template void geluForward<float>(float*, const float*, int64_t);
template void geluForward<double>(double*, const double*, int64_t);
template void geluBackward<float>(float*, const float*, const float*, int64_t);
template void geluBackward<double>(double*, const double*, const double*, int64_t);

}  // namespace kdgrid::cpu::ref
