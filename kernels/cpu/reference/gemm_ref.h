// Reference GEMM: the definition of kdgrid::cpu::gemm as plain loops in double.
//
//   C[i,j] = alpha * sum_k op(A)[i,k] * op(B)[k,j] + beta * C[i,j] + bias[j]
//
// Same storage conventions as kernels/cpu/gemm.h (row-major; op(A)[i,k] = A[i*lda + k], or
// A[k*lda + i] when trans_a; op(B)[k,j] = B[k*ldb + j], or B[j*ldb + k] when trans_b; C[i,j] =
// C[i*ldc + j]); beta == 0 does not read C. Elements of any type convertible to double
// (float, double, bf16, f16); a double C keeps the exact double result for comparisons.
#pragma once

#include <cstdint>
#include <type_traits>

#include "src/core/dtype.h"

namespace kdgrid::cpu::ref {

template <typename T>
double toDouble(T x) {
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    return static_cast<double>(x);
  } else {
    return static_cast<double>(toFloat(x));
  }
}

template <typename T>
T fromDouble(double x) {
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    return static_cast<T>(x);
  } else {
    return fromFloat<T>(static_cast<float>(x));
  }
}

template <typename TA, typename TB, typename TC>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const TA* A,
          int64_t lda, const TB* B, int64_t ldb, float beta, TC* C, int64_t ldc,
          const float* bias_n = nullptr) {
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      double sum = 0.0;
      for (int64_t k = 0; k < K; ++k) {
        const double a = toDouble(trans_a ? A[k * lda + i] : A[i * lda + k]);
        const double b = toDouble(trans_b ? B[j * ldb + k] : B[k * ldb + j]);
        sum += a * b;
      }
      double c = static_cast<double>(alpha) * sum;
      if (beta != 0.0f) c += static_cast<double>(beta) * toDouble(C[i * ldc + j]);
      if (bias_n != nullptr) c += static_cast<double>(bias_n[j]);
      C[i * ldc + j] = fromDouble<TC>(c);
    }
  }
}

}  // namespace kdgrid::cpu::ref
