#include "kernels/cpu/layernorm.h"

#include <cmath>
#include <memory>
#include <type_traits>
#include <vector>

#include "kernels/cpu/detail/convert_simd.h"
#include "kernels/cpu/detail/parallel.h"
#include "kernels/cpu/detail/reduce_simd.h"
#include "src/core/dtype.h"

namespace kdgrid::cpu {

namespace {

// Rows per dweight/dbias partial in the backward pass: fixed so that results do not depend
// on the thread count; 64 rows keep the partials (2 * cols floats per block) small next to
// the rows they summarise.
constexpr int64_t kRowsPerBlock = 64;

}  // namespace

template <typename T>
void layerNormForward(T* out, float* mean, float* rstd, const T* x, const float* weight,
                      const float* bias, int64_t rows, int64_t cols, float eps) {
  const float inv_cols = 1.0f / static_cast<float>(cols);
#pragma omp parallel if (detail::worthParallel(rows * cols))
  {
    // fp32 staging of one row of x and one of out (unused when T is float).
    std::vector<float> scratch(std::is_same_v<T, float> ? 0 : 2 * cols);
#pragma omp for schedule(static)
    for (int64_t n = 0; n < rows; ++n) {
      const float* xr = detail::loadF32(x + n * cols, cols, scratch.data());
      // Mean as x[0] + mean(x - x[0]), then the squared deviations from it in a second pass:
      // rows whose mean is large next to their spread keep their precision.
      const float mu = xr[0] + detail::sumDeviationF32(xr, xr[0], cols) * inv_cols;
      const float sq = detail::sumSquaredDeviationF32(xr, mu, cols);
      const float s = 1.0f / std::sqrt(sq * inv_cols + eps);
      float* o = detail::outF32(out + n * cols, scratch.data() + cols);
#pragma omp simd
      for (int64_t c = 0; c < cols; ++c) o[c] = (xr[c] - mu) * s * weight[c] + bias[c];
      detail::storeF32(out + n * cols, o, cols);
      if (mean) mean[n] = mu;
      if (rstd) rstd[n] = s;
    }
  }
}

template <typename T>
void layerNormBackward(T* dx, float* dweight, float* dbias, const T* dout, const T* x,
                       const float* weight, const float* mean, const float* rstd, int64_t rows,
                       int64_t cols, bool accumulate_dx) {
  const float inv_cols = 1.0f / static_cast<float>(cols);
  const int64_t blocks = detail::ceilDiv(rows, kRowsPerBlock);
  // (blocks, cols) partial sums of dweight and dbias; each block zeroes its own.
  std::unique_ptr<float[]> dw_part(new float[static_cast<size_t>(blocks * cols)]);
  std::unique_ptr<float[]> db_part(new float[static_cast<size_t>(blocks * cols)]);
#pragma omp parallel if (detail::worthParallel(rows * cols))
  {
    // fp32 staging of one row each of x, dout and dx (unused when T is float).
    std::vector<float> scratch(std::is_same_v<T, float> ? 0 : 3 * cols);
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
      float* pdw = dw_part.get() + b * cols;
      float* pdb = db_part.get() + b * cols;
      for (int64_t c = 0; c < cols; ++c) pdw[c] = pdb[c] = 0.0f;
      const int64_t row_end = (b + 1) * kRowsPerBlock < rows ? (b + 1) * kRowsPerBlock : rows;
      for (int64_t n = b * kRowsPerBlock; n < row_end; ++n) {
        const float* xr = detail::loadF32(x + n * cols, cols, scratch.data());
        const float* dr = detail::loadF32(dout + n * cols, cols, scratch.data() + cols);
        const float mu = mean[n];
        const float s = rstd[n];
        float g_mean = 0.0f;
        float gx_mean = 0.0f;
#pragma omp simd reduction(+ : g_mean, gx_mean)
        for (int64_t c = 0; c < cols; ++c) {
          const float xhat = (xr[c] - mu) * s;
          const float g = dr[c] * weight[c];
          g_mean += g;
          gx_mean += g * xhat;
          pdw[c] += dr[c] * xhat;
          pdb[c] += dr[c];
        }
        g_mean *= inv_cols;
        gx_mean *= inv_cols;
        T* dxr = dx + n * cols;
        float* o = detail::outF32(dxr, scratch.data() + 2 * cols);
        if (accumulate_dx) {
          if constexpr (!std::is_same_v<T, float>) detail::toF32(o, dxr, cols);
#pragma omp simd
          for (int64_t c = 0; c < cols; ++c) {
            const float xhat = (xr[c] - mu) * s;
            o[c] += s * (dr[c] * weight[c] - g_mean - xhat * gx_mean);
          }
        } else {
#pragma omp simd
          for (int64_t c = 0; c < cols; ++c) {
            const float xhat = (xr[c] - mu) * s;
            o[c] = s * (dr[c] * weight[c] - g_mean - xhat * gx_mean);
          }
        }
        detail::storeF32(dxr, o, cols);
      }
    }
  }
  detail::addBlockPartials(dweight, dw_part.get(), blocks, cols);
  detail::addBlockPartials(dbias, db_part.get(), blocks, cols);
}

#define KDGRID_INSTANTIATE_LAYERNORM(T)                                                       \
  template void layerNormForward<T>(T*, float*, float*, const T*, const float*, const float*, \
                                    int64_t, int64_t, float);                                 \
  template void layerNormBackward<T>(T*, float*, float*, const T*, const T*, const float*,    \
                                     const float*, const float*, int64_t, int64_t, bool);
KDGRID_INSTANTIATE_LAYERNORM(float)
KDGRID_INSTANTIATE_LAYERNORM(bf16)
KDGRID_INSTANTIATE_LAYERNORM(f16)
#undef KDGRID_INSTANTIATE_LAYERNORM

}  // namespace kdgrid::cpu
