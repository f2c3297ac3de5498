#include "kernels/cpu/reference/layernorm.h"

#include <cmath>
#include <vector>

namespace kdgrid::cpu::ref {

template <typename Real>
void layerNormForward(Real* out, Real* mean, Real* rstd, const Real* x, const Real* weight,
                      const Real* bias, int64_t rows, int64_t cols, double eps) {
  for (int64_t n = 0; n < rows; ++n) {
    const Real* xr = x + n * cols;
    double sum = 0.0;
    for (int64_t c = 0; c < cols; ++c) sum += xr[c];
    const double mu = sum / static_cast<double>(cols);
    double sq = 0.0;
    for (int64_t c = 0; c < cols; ++c) sq += (xr[c] - mu) * (xr[c] - mu);
    const double s = 1.0 / std::sqrt(sq / static_cast<double>(cols) + eps);
    for (int64_t c = 0; c < cols; ++c) {
      out[n * cols + c] = static_cast<Real>((xr[c] - mu) * s * weight[c] + bias[c]);
    }
    if (mean) mean[n] = static_cast<Real>(mu);
    if (rstd) rstd[n] = static_cast<Real>(s);
  }
}

// With xhat = (x - mean) * rstd and g = dout * weight (per row):
//   dx = rstd * (g - mean_c(g) - xhat * mean_c(g * xhat)),
//   dweight += sum_n dout * xhat, dbias += sum_n dout.
template <typename Real>
void layerNormBackward(Real* dx, Real* dweight, Real* dbias, const Real* dout, const Real* x,
                       const Real* weight, const Real* mean, const Real* rstd, int64_t rows,
                       int64_t cols, bool accumulate_dx) {
  std::vector<double> dw(static_cast<size_t>(cols), 0.0);
  std::vector<double> db(static_cast<size_t>(cols), 0.0);
  for (int64_t n = 0; n < rows; ++n) {
    const Real* xr = x + n * cols;
    const Real* dr = dout + n * cols;
    const double mu = mean[n];
    const double s = rstd[n];
    double g_mean = 0.0;
    double gx_mean = 0.0;
    for (int64_t c = 0; c < cols; ++c) {
      const double xhat = (xr[c] - mu) * s;
      const double g = static_cast<double>(dr[c]) * weight[c];
      g_mean += g;
      gx_mean += g * xhat;
      dw[c] += static_cast<double>(dr[c]) * xhat;
      db[c] += dr[c];
    }
    g_mean /= static_cast<double>(cols);
    gx_mean /= static_cast<double>(cols);
    for (int64_t c = 0; c < cols; ++c) {
      const double xhat = (xr[c] - mu) * s;
      const double g = static_cast<double>(dr[c]) * weight[c];
      const double d = s * (g - g_mean - xhat * gx_mean);
      Real& out = dx[n * cols + c];
      out = static_cast<Real>(accumulate_dx ? out + d : d);
    }
  }
  for (int64_t c = 0; c < cols; ++c) {
    dweight[c] = static_cast<Real>(dweight[c] + dw[c]);
    dbias[c] = static_cast<Real>(dbias[c] + db[c]);
  }
}

template void layerNormForward<float>(float*, float*, float*, const float*, const float*,
                                      const float*, int64_t, int64_t, double);
template void layerNormForward<double>(double*, double*, double*, const double*, const double*,
                                       const double*, int64_t, int64_t, double);
template void layerNormBackward<float>(float*, float*, float*, const float*, const float*,
                                       const float*, const float*, const float*, int64_t, int64_t,
                                       bool);
template void layerNormBackward<double>(double*, double*, double*, const double*, const double*,
                                        const double*, const double*, const double*, int64_t,
                                        int64_t, bool);

}  // namespace kdgrid::cpu::ref
