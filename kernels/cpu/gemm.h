// Dense matrix products on the CPU through oneDNN's matmul primitive.
//
//   C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C[M,N] + bias[N] (broadcast over rows)
//
// Row-major storage with leading dimensions (in elements): op(A) = A, stored [M, lda >= K],
// or A^T with A stored [K, lda >= M]; op(B) = B, stored [K, ldb >= N], or B^T with B stored
// [N, ldb >= K]; C stored [M, ldc >= N]. Only the first N columns of each row of C are
// written: the padding columns between N and ldc are never touched. beta == 0 never reads C
// (it may hold garbage or NaN); any other beta accumulates (oneDNN's sum post-op), e.g.
// beta = 1 to add weight gradients into an fp32 buffer. bias is fp32 [N] or null.
//
// Type combinations (A x B -> C): f32 x f32 -> f32; bf16 x bf16 -> f32 or bf16;
// f16 x f16 -> f32 or f16. Math is fp32 with fp32 accumulation in every case.
// fp16: oneDNN 2.6 has no fp16 matmul on CPUs without AVX512-FP16 (this Zen 5 has none:
// primitive creation fails), so f16 operands are widened to fp32 (exactly) into context-owned
// buffers and the product runs as an fp32 GEMM; an f16 C is computed in an fp32 buffer and
// rounded once at the end. fp16 therefore runs at fp32 speed plus the conversions.
// Widening to bf16 instead would be faster but drops 3 mantissa bits of every input.
//
// A linear layer Y[T,out] = X[T,in] W^T + b with W stored [out, in] uses:
//   forward       gemm(ctx, false, true,  T, out, in, 1, X, in, W, in, 0, Y, out, b)
//   input grad    gemm(ctx, false, false, T, in, out, 1, dY, out, W, in, 0, dX, in)
//   weight grad   gemm(ctx, true,  false, out, in, T, 1, dY, out, X, in, 1, dW, in)   (dW += ..)
//   (the weight grad takes bf16 dY and X and accumulates into an fp32 dW.)
//
// Threads: oneDNN (Debian's build uses OpenMP) runs each product on omp_get_max_threads()
// threads, so OMP_NUM_THREADS / omp_set_num_threads apply. Called from inside an OpenMP
// parallel region it runs on one thread; prefer gemmBatched to a parallel loop of gemms.
#pragma once

#include <cstdint>
#include <memory>
#include <type_traits>

#include "src/core/dtype.h"

namespace kdgrid::cpu {

// Repeats a product over an (outer x inner) grid of batches: operand X of batch (o, i) starts
// at X + o * x_outer + i * x_inner (strides in elements). A stride of 0 for A or B with a
// count > 1 broadcasts that operand over the batch dimension; C's strides must make the
// outputs disjoint. Two levels let attention address per-(batch, head) blocks straight inside
// a [B, T, 3*D] qkv buffer (outer = batch, inner = head).
struct GemmBatch {
  int64_t outer = 1, inner = 1;      // batch counts
  int64_t a_outer = 0, a_inner = 0;  // element strides of A
  int64_t b_outer = 0, b_inner = 0;  // element strides of B
  int64_t c_outer = 0, c_inner = 0;  // element strides of C
};

// One product with runtime types: what the typed wrappers below build, and the form a
// dispatch layer holding DType values calls directly.
struct GemmCall {
  bool trans_a = false, trans_b = false;
  int64_t m = 0, n = 0, k = 0;
  float alpha = 1.0f, beta = 0.0f;
  DType type_a = DType::kF32, type_b = DType::kF32, type_c = DType::kF32;
  const void* a = nullptr;
  int64_t lda = 0;
  const void* b = nullptr;
  int64_t ldb = 0;
  void* c = nullptr;
  int64_t ldc = 0;
  const float* bias = nullptr;  // [n] fp32, added to every row of every batch; or null
  GemmBatch batch;
};

// Owns the oneDNN CPU engine and stream, a cache of matmul primitives and the scratch memory
// they run with. Create one per process (the engine owns it) and pass it to every call.
//
// Primitive creation costs tens to hundreds of microseconds (JIT code generation), so each
// distinct problem (types, shape, leading dimensions, batch layout, transposes, alpha, beta,
// bias or not) creates its primitive once and reuses it; the cache is never evicted (a model
// has a few dozen distinct shapes).
//
// Thread safety: calls on one context are serialised by an internal mutex held across lookup
// AND execution, because the context owns one scratchpad buffer that every primitive uses
// (user-managed scratchpad: oneDNN's library-managed one may not be used from a thread other
// than the creating one in Debian's DNNL_ENABLE_CONCURRENT_EXEC=OFF build). Threads that want
// to run GEMMs at the same time use one context each.
class GemmContext {
 public:
  GemmContext();
  ~GemmContext();
  GemmContext(const GemmContext&) = delete;
  GemmContext& operator=(const GemmContext&) = delete;

  // Number of primitives created so far (one per distinct problem).
  size_t cachedPrimitives() const;

  struct Impl;  // engine, stream, cache, buffers, mutex (gemm.cpp)

 private:
  friend void gemm(GemmContext& ctx, const GemmCall& call);
  std::unique_ptr<Impl> impl_;
};

// Runs `call`. Invalid arguments (negative sizes, leading dimensions narrower than the rows,
// unsupported type combination, overlapping batched outputs) fail KDGRID_CHECK.
void gemm(GemmContext& ctx, const GemmCall& call);

template <typename TA, typename TB, typename TC>
constexpr bool kGemmSupported = (std::is_same_v<TA, float> && std::is_same_v<TB, float> &&
                                 std::is_same_v<TC, float>) ||
                                (std::is_same_v<TA, bf16> && std::is_same_v<TB, bf16> &&
                                 (std::is_same_v<TC, float> || std::is_same_v<TC, bf16>)) ||
                                (std::is_same_v<TA, f16> && std::is_same_v<TB, f16> &&
                                 (std::is_same_v<TC, float> || std::is_same_v<TC, f16>));

// C = alpha * op(A) op(B) + beta * C + bias (see the file comment for shapes).
template <typename TA, typename TB, typename TC>
void gemm(GemmContext& ctx, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
          float alpha, const TA* A, int64_t lda, const TB* B, int64_t ldb, float beta, TC* C,
          int64_t ldc, const float* bias_n = nullptr) {
  static_assert(kGemmSupported<TA, TB, TC>, "unsupported GEMM type combination");
  GemmCall call;
  call.trans_a = trans_a;
  call.trans_b = trans_b;
  call.m = M;
  call.n = N;
  call.k = K;
  call.alpha = alpha;
  call.beta = beta;
  call.type_a = dtypeOf<TA>();
  call.type_b = dtypeOf<TB>();
  call.type_c = dtypeOf<TC>();
  call.a = A;
  call.lda = lda;
  call.b = B;
  call.ldb = ldb;
  call.c = C;
  call.ldc = ldc;
  call.bias = bias_n;
  gemm(ctx, call);
}

// The same product for every batch of `batch` (per-(batch, head) attention products).
template <typename TA, typename TB, typename TC>
void gemmBatched(GemmContext& ctx, const GemmBatch& batch, bool trans_a, bool trans_b, int64_t M,
                 int64_t N, int64_t K, float alpha, const TA* A, int64_t lda, const TB* B,
                 int64_t ldb, float beta, TC* C, int64_t ldc, const float* bias_n = nullptr) {
  static_assert(kGemmSupported<TA, TB, TC>, "unsupported GEMM type combination");
  GemmCall call;
  call.trans_a = trans_a;
  call.trans_b = trans_b;
  call.m = M;
  call.n = N;
  call.k = K;
  call.alpha = alpha;
  call.beta = beta;
  call.type_a = dtypeOf<TA>();
  call.type_b = dtypeOf<TB>();
  call.type_c = dtypeOf<TC>();
  call.a = A;
  call.lda = lda;
  call.b = B;
  call.ldb = ldb;
  call.c = C;
  call.ldc = ldc;
  call.bias = bias_n;
  call.batch = batch;
  gemm(ctx, call);
}

// The best GEMM rate this process reaches, in FLOP/s (2*n^3 per product): n x n x n products
// with A, B and C of `dtype` (f16 goes through the fp32 widening path), each of the four
// transpose combinations timed `repeats` times after one warm-up; returns the fastest single
// run. The denominator for "fraction of GEMM peak"; uses the current OpenMP thread count.
double measureGemmPeakFlops(GemmContext& ctx, DType dtype, int64_t n = 2048, int repeats = 5);

}  // namespace kdgrid::cpu
