// GEMM (kernels/cpu/gemm.h) against the double reference (kernels/cpu/reference/gemm_ref.h).
//
// Tolerance, derived rather than tuned. The kernel multiplies exactly the values stored in A
// and B (a bf16 x bf16 product is exact in fp32; fp16 is widened to fp32 exactly), so the
// reference runs in double on the very same stored values, and the only differences are the
// fp32 roundings of the accumulation and the final rounding to C's type:
// - a K-term dot product summed in any order (blocked, split over threads, FMA or not) with
//   unit roundoff u = 2^-24 is within gamma_K * sum_k |a_k b_k|, gamma_K = K u / (1 - K u);
//   alpha, the beta * C term and the bias add three roundings. With
//     mag_ij = |alpha| sum_k |a_ik b_kj| + |beta c_ij| + |bias_j|
//   (the reference run on |A|, |B|, |C|, |bias|) the fp32 value is within (K + 4) u mag_ij
//   (K + 4 >= K / (1 - K u) + 3 for every K here);
// - rounding to C's type adds at most u_out * |value| (u_out = 2^-24 fp32, 2^-8 bf16, 2^-11
//   fp16), or half the subnormal spacing near zero (fp16: 2^-25).
// So each element must satisfy |got - ref| <= (K + 4) u mag (1 + u_out) + tiny_out + u_out |ref|.
// Elementwise, relative to the terms' magnitudes rather than to |ref| (cancellation makes
// |ref| small), this is tight: a wrong transpose, stride, alpha, beta or bias, or a read of a
// padding element (padding holds NaN), misses it by orders of magnitude.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/reference/gemm_ref.h"
#include "src/core/check.h"
#include "tests/kernel_test_util.h"

namespace kdgrid::cpu {
namespace {

using test::allClose;
using test::GuardedBuffer;

// Unit roundoff of a storage type, and half its smallest subnormal spacing.
template <typename T>
constexpr double kUnitRoundoff = std::is_same_v<T, float>  ? 0x1p-24
                                 : std::is_same_v<T, bf16> ? 0x1p-8
                                                           : 0x1p-11;
template <typename T>
constexpr double kTiny = std::is_same_v<T, float>  ? 0x1p-150
                         : std::is_same_v<T, bf16> ? 0x1p-134
                                                   : 0x1p-25;

template <typename T>
T nanOf() {
  return fromFloat<T>(std::numeric_limits<float>::quiet_NaN());
}

// [rows, cols] in a [rows, ld] buffer, uniform in [-1, 1]; the ld - cols padding columns hold
// NaN, so a kernel that reads them poisons its output.
template <typename T>
std::vector<T> randomMatrix(int64_t rows, int64_t cols, int64_t ld, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<T> m(static_cast<size_t>(rows * ld), nanOf<T>());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) m[r * ld + c] = fromFloat<T>(dist(rng));
  return m;
}

template <typename T>
std::vector<double> absolute(const std::vector<T>& v) {
  std::vector<double> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = std::fabs(ref::toDouble(v[i]));
  return out;
}

std::vector<float> absolute(const std::vector<float>& v) {  // a bias stays fp32 (exact)
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = std::fabs(v[i]);
  return out;
}

// The per-element error allowance of the file comment for a K-term product.
template <typename TC>
std::vector<double> allowance(const std::vector<double>& mag, int64_t k) {
  std::vector<double> tol(mag.size());
  for (size_t i = 0; i < mag.size(); ++i)
    tol[i] = static_cast<double>(k + 4) * 0x1p-24 * mag[i] * (1.0 + kUnitRoundoff<TC>);
  return tol;
}

template <typename TC>
::testing::AssertionResult matches(const std::vector<double>& got, const std::vector<double>& ref,
                                   const std::vector<double>& mag, int64_t k) {
  return allClose(got, ref, kTiny<TC>, kUnitRoundoff<TC>, allowance<TC>(mag, k));
}

struct Case {
  int64_t m, n, k;
  bool ta, tb;
  float alpha, beta;
  bool bias;
  int64_t pad;  // leading dimensions exceed the widths by this much
};

std::string describe(const Case& c) {
  return fmt::format("M={} N={} K={} trans_a={} trans_b={} alpha={} beta={} bias={} pad={}", c.m,
                     c.n, c.k, c.ta, c.tb, c.alpha, c.beta, c.bias, c.pad);
}

template <typename TA, typename TB, typename TC>
void runCase(GemmContext& ctx, const Case& cs, uint32_t seed) {
  SCOPED_TRACE(describe(cs));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  const int64_t m = cs.m, n = cs.n, k = cs.k;
  const int64_t a_rows = cs.ta ? k : m, a_cols = cs.ta ? m : k, lda = a_cols + cs.pad;
  const int64_t b_rows = cs.tb ? n : k, b_cols = cs.tb ? k : n, ldb = b_cols + cs.pad;
  const int64_t ldc = n + cs.pad;
  const auto a = randomMatrix<TA>(a_rows, a_cols, lda, rng);
  const auto b = randomMatrix<TB>(b_rows, b_cols, ldb, rng);
  std::vector<float> bias(n);
  for (auto& x : bias) x = dist(rng);

  // C: every element starts as the guard pattern; the M x N results are then set to values
  // (beta != 0) or NaN (beta == 0 must not read them). Padding columns must keep the pattern.
  GuardedBuffer<TC> c(static_cast<size_t>(m * ldc));
  c.fillPattern(0, c.size());
  std::vector<double> ref(m * n, 0.0), mag(m * n, 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      if (cs.beta != 0.0f) {
        c[i * ldc + j] = fromFloat<TC>(dist(rng));
        ref[i * n + j] = ref::toDouble(c[i * ldc + j]);
        mag[i * n + j] = std::fabs(ref[i * n + j]);
      } else {
        c[i * ldc + j] = nanOf<TC>();
      }
    }
  const float* bias_ptr = cs.bias ? bias.data() : nullptr;
  ref::gemm(cs.ta, cs.tb, m, n, k, cs.alpha, a.data(), lda, b.data(), ldb, cs.beta, ref.data(), n,
            bias_ptr);
  const auto abs_a = absolute(a), abs_b = absolute(b);
  const auto abs_bias = absolute(bias);
  ref::gemm(cs.ta, cs.tb, m, n, k, std::fabs(cs.alpha), abs_a.data(), lda, abs_b.data(), ldb,
            std::fabs(cs.beta), mag.data(), n, cs.bias ? abs_bias.data() : nullptr);

  gemm(ctx, cs.ta, cs.tb, m, n, k, cs.alpha, a.data(), lda, b.data(), ldb, cs.beta, c.data(), ldc,
       bias_ptr);

  EXPECT_TRUE(c.guardIntact()) << "write past the end of C";
  bool padding_intact = true;
  std::vector<double> got(m * n);
  for (int64_t i = 0; i < m; ++i) {
    padding_intact = padding_intact && c.patternIntact(i * ldc + n, (i + 1) * ldc);
    for (int64_t j = 0; j < n; ++j) got[i * n + j] = ref::toDouble(c[i * ldc + j]);
  }
  EXPECT_TRUE(padding_intact) << "C's padding columns were written";
  EXPECT_TRUE(matches<TC>(got, ref, mag, k));
}

template <typename A, typename B, typename C>
struct Combo {
  using TA = A;
  using TB = B;
  using TC = C;
};
using Combos =
    ::testing::Types<Combo<float, float, float>, Combo<bf16, bf16, float>, Combo<bf16, bf16, bf16>,
                     Combo<f16, f16, float>, Combo<f16, f16, f16>>;
struct ComboNames {
  template <typename T>
  static std::string GetName(int) {
    return fmt::format("{}x{}_to_{}", dtypeName(dtypeOf<typename T::TA>()),
                       dtypeName(dtypeOf<typename T::TB>()), dtypeName(dtypeOf<typename T::TC>()));
  }
};

template <typename T>
class GemmTyped : public ::testing::Test {};
TYPED_TEST_SUITE(GemmTyped, Combos, ComboNames);

// Every transpose x alpha x beta x bias x padding variant on all small shapes.
TYPED_TEST(GemmTyped, SmallShapesAllVariants) {
  using TA = typename TypeParam::TA;
  using TB = typename TypeParam::TB;
  using TC = typename TypeParam::TC;
  GemmContext ctx;
  const int64_t sizes[] = {1, 3, 17};
  uint32_t seed = 1;
  for (int64_t m : sizes)
    for (int64_t n : sizes)
      for (int64_t k : sizes)
        for (int v = 0; v < 64; ++v) {
          Case cs{m, n, k, (v & 1) != 0, (v & 2) != 0, 1.0f, 0.0f, (v & 16) != 0, 0};
          cs.alpha = v & 4 ? -0.75f : 1.0f;
          cs.beta = v & 8 ? 1.0f : 0.0f;
          cs.pad = v & 32 ? 5 : 0;
          runCase<TA, TB, TC>(ctx, cs, seed++);
          if (this->HasFailure()) return;
        }
}

// Larger and lopsided shapes (K = 1, M or N = 1, sizes around the kernels' blocking), all
// transposes; the other variants rotate over the list.
TYPED_TEST(GemmTyped, LargeAndOddShapes) {
  using TA = typename TypeParam::TA;
  using TB = typename TypeParam::TB;
  using TC = typename TypeParam::TC;
  GemmContext ctx;
  struct Shape {
    int64_t m, n, k;
  };
  const Shape shapes[] = {{64, 64, 64},   {255, 257, 1},  {257, 1, 255},  {1, 255, 257},
                          {257, 255, 17}, {17, 257, 255}, {255, 17, 257}, {64, 127, 1000},
                          {3, 1000, 64},  {257, 64, 255}};
  uint32_t seed = 1000;
  for (int si = 0; si < static_cast<int>(std::size(shapes)); ++si)
    for (int t = 0; t < 4; ++t) {
      // Shape index + transpose choose the variant, so each transpose meets each variant.
      const Shape& s = shapes[si];
      Case cs{s.m, s.n, s.k, (t & 1) != 0, (t & 2) != 0, 1.0f, 0.0f, (si + t / 2) % 2 == 0, 0};
      cs.alpha = (si + t) % 3 == 1 ? 0.5f : 1.0f;
      cs.beta = (si + t) % 2 ? 1.0f : 0.0f;
      cs.pad = si % 2 ? 7 : 0;
      runCase<TA, TB, TC>(ctx, cs, seed++);
      if (this->HasFailure()) return;
    }
}

// beta other than 0 and 1 scales C.
TYPED_TEST(GemmTyped, GeneralBeta) {
  using TA = typename TypeParam::TA;
  using TB = typename TypeParam::TB;
  using TC = typename TypeParam::TC;
  GemmContext ctx;
  runCase<TA, TB, TC>(ctx, {33, 20, 45, false, true, 1.0f, 0.5f, true, 3}, 7);
  runCase<TA, TB, TC>(ctx, {33, 20, 45, true, false, 2.0f, -1.5f, false, 0}, 8);
}

// A linear layer Y = X W^T + b, W [out, in], in the three call patterns documented in gemm.h,
// checked against explicit index formulas (independent of the reference's transpose logic).
// The weight gradient accumulates twice into an fp32 buffer.
TYPED_TEST(GemmTyped, LinearLayerUses) {
  using T = typename TypeParam::TA;
  using TC = typename TypeParam::TC;
  GemmContext ctx;
  const int64_t tokens = 37, in = 48, out = 20;
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  const auto x = randomMatrix<T>(tokens, in, in, rng);
  const auto w = randomMatrix<T>(out, in, in, rng);
  const auto dy = randomMatrix<T>(tokens, out, out, rng);
  std::vector<float> b(out);
  for (auto& v : b) v = dist(rng);
  auto at = [](const auto& v, int64_t i) { return ref::toDouble(v[i]); };

  GuardedBuffer<TC> y(tokens * out);
  gemm(ctx, false, true, tokens, out, in, 1.0f, x.data(), in, w.data(), in, 0.0f, y.data(), out,
       b.data());
  std::vector<double> got(tokens * out), want(tokens * out), mag(tokens * out);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t o = 0; o < out; ++o) {
      double s = b[o], a = std::fabs(b[o]);
      for (int64_t i = 0; i < in; ++i) {
        s += at(x, t * in + i) * at(w, o * in + i);
        a += std::fabs(at(x, t * in + i) * at(w, o * in + i));
      }
      want[t * out + o] = s;
      mag[t * out + o] = a;
      got[t * out + o] = ref::toDouble(y[t * out + o]);
    }
  EXPECT_TRUE(y.guardIntact());
  EXPECT_TRUE(matches<TC>(got, want, mag, in)) << "forward";

  GuardedBuffer<TC> dx(tokens * in);
  gemm(ctx, false, false, tokens, in, out, 1.0f, dy.data(), out, w.data(), in, 0.0f, dx.data(), in);
  got.assign(tokens * in, 0);
  want.assign(tokens * in, 0);
  mag.assign(tokens * in, 0);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t i = 0; i < in; ++i) {
      for (int64_t o = 0; o < out; ++o) {
        want[t * in + i] += at(dy, t * out + o) * at(w, o * in + i);
        mag[t * in + i] += std::fabs(at(dy, t * out + o) * at(w, o * in + i));
      }
      got[t * in + i] = ref::toDouble(dx[t * in + i]);
    }
  EXPECT_TRUE(dx.guardIntact());
  EXPECT_TRUE(matches<TC>(got, want, mag, out)) << "input gradient";

  // dW (fp32 whatever the activation type) starts non-zero and takes two accumulations.
  GuardedBuffer<float> dw(out * in);
  want.assign(out * in, 0);
  mag.assign(out * in, 0);
  for (int64_t j = 0; j < out * in; ++j) {
    dw[j] = dist(rng);
    want[j] = dw[j];
    mag[j] = std::fabs(dw[j]);
  }
  for (int rep = 0; rep < 2; ++rep) {
    gemm(ctx, true, false, out, in, tokens, 1.0f, dy.data(), out, x.data(), in, 1.0f, dw.data(),
         in);
    for (int64_t o = 0; o < out; ++o)
      for (int64_t i = 0; i < in; ++i)
        for (int64_t t = 0; t < tokens; ++t) {
          want[o * in + i] += at(dy, t * out + o) * at(x, t * in + i);
          mag[o * in + i] += std::fabs(at(dy, t * out + o) * at(x, t * in + i));
        }
  }
  got.assign(dw.data(), dw.data() + out * in);
  EXPECT_TRUE(dw.guardIntact());
  // Two accumulations: each adds its own rounding budget, hence 2 * (tokens + 4) terms.
  EXPECT_TRUE(matches<float>(got, want, mag, 2 * tokens + 4)) << "weight gradient";
}

// gemmBatched over an arbitrary (outer x inner) layout: every output block against the
// reference, and every element of C that is not an output keeps its guard pattern.
template <typename TA, typename TB, typename TC>
void runBatched(GemmContext& ctx, const GemmBatch& bt, bool ta, bool tb, int64_t m, int64_t n,
                int64_t k, float alpha, float beta, bool with_bias, int64_t lda, int64_t ldb,
                int64_t ldc, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  const int64_t a_rows = ta ? k : m, b_rows = tb ? n : k;
  const int64_t span_a = (bt.outer - 1) * bt.a_outer + (bt.inner - 1) * bt.a_inner + a_rows * lda;
  const int64_t span_b = (bt.outer - 1) * bt.b_outer + (bt.inner - 1) * bt.b_inner + b_rows * ldb;
  const int64_t span_c = (bt.outer - 1) * bt.c_outer + (bt.inner - 1) * bt.c_inner + m * ldc;
  const auto a = randomMatrix<TA>(1, span_a, span_a, rng);
  const auto b = randomMatrix<TB>(1, span_b, span_b, rng);
  std::vector<float> bias(n);
  for (auto& x : bias) x = dist(rng);
  const float* bias_ptr = with_bias ? bias.data() : nullptr;
  GuardedBuffer<TC> c(span_c);
  c.fillPattern(0, span_c);
  std::vector<char> is_output(span_c, 0);
  const int64_t blocks = bt.outer * bt.inner;
  std::vector<double> ref(blocks * m * n, 0.0), mag(blocks * m * n, 0.0);
  for (int64_t o = 0; o < bt.outer; ++o)
    for (int64_t i = 0; i < bt.inner; ++i) {
      const int64_t base = o * bt.c_outer + i * bt.c_inner, blk = (o * bt.inner + i) * m * n;
      for (int64_t r = 0; r < m; ++r)
        for (int64_t j = 0; j < n; ++j) {
          const int64_t pos = base + r * ldc + j;
          is_output[pos] = 1;
          c[pos] = beta != 0.0f ? fromFloat<TC>(dist(rng)) : nanOf<TC>();
          if (beta != 0.0f) {
            ref[blk + r * n + j] = ref::toDouble(c[pos]);
            mag[blk + r * n + j] = std::fabs(ref[blk + r * n + j]);
          }
        }
    }
  const auto abs_a = absolute(a), abs_b = absolute(b);
  const auto abs_bias = absolute(bias);
  for (int64_t o = 0; o < bt.outer; ++o)
    for (int64_t i = 0; i < bt.inner; ++i) {
      const int64_t oa = o * bt.a_outer + i * bt.a_inner, ob = o * bt.b_outer + i * bt.b_inner;
      const int64_t blk = (o * bt.inner + i) * m * n;
      ref::gemm(ta, tb, m, n, k, alpha, a.data() + oa, lda, b.data() + ob, ldb, beta,
                ref.data() + blk, n, bias_ptr);
      ref::gemm(ta, tb, m, n, k, std::fabs(alpha), abs_a.data() + oa, lda, abs_b.data() + ob, ldb,
                std::fabs(beta), mag.data() + blk, n, with_bias ? abs_bias.data() : nullptr);
    }

  gemmBatched(ctx, bt, ta, tb, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc,
              bias_ptr);

  EXPECT_TRUE(c.guardIntact());
  bool others_intact = true;
  for (int64_t pos = 0; pos < span_c; ++pos)
    if (!is_output[pos]) others_intact = others_intact && c.patternIntact(pos, pos + 1);
  EXPECT_TRUE(others_intact) << "an element outside the output blocks was written";
  std::vector<double> got(blocks * m * n);
  for (int64_t o = 0; o < bt.outer; ++o)
    for (int64_t i = 0; i < bt.inner; ++i)
      for (int64_t r = 0; r < m; ++r)
        for (int64_t j = 0; j < n; ++j)
          got[(o * bt.inner + i) * m * n + r * n + j] =
              ref::toDouble(c[o * bt.c_outer + i * bt.c_inner + r * ldc + j]);
  EXPECT_TRUE(matches<TC>(got, ref, mag, k));
}

// Attention's per-(batch, head) products addressed inside a [B, T, 3D] qkv buffer:
// S[b,h] = scale * Q[b,h] K[b,h]^T into [B, H, T, T], then O[b,:,h] = P[b,h] V[b,h] into the
// head's columns of [B, T, D].
TYPED_TEST(GemmTyped, BatchedAttentionLayout) {
  using TA = typename TypeParam::TA;
  using TC = typename TypeParam::TC;
  GemmContext ctx;
  const int64_t batch = 2, heads = 3, t = 19, hd = 8, d = heads * hd;
  GemmBatch qk{batch, heads, t * 3 * d, hd, t * 3 * d, hd, heads * t * t, t * t};
  {
    SCOPED_TRACE("Q K^T");
    runBatched<TA, TA, TC>(ctx, qk, false, true, t, t, hd, 0.35f, 0.0f, false, 3 * d, 3 * d, t, 11);
  }
  GemmBatch pv{batch, heads, heads * t * t, t * t, t * 3 * d, hd, t * d, hd};
  {
    SCOPED_TRACE("P V");
    runBatched<TA, TA, TC>(ctx, pv, false, false, t, hd, t, 1.0f, 0.0f, false, t, 3 * d, d, 12);
  }
  {
    SCOPED_TRACE("dP = dO V^T, accumulate");
    GemmBatch dp{batch, heads, t * d, hd, t * 3 * d, hd, heads * t * t, t * t};
    runBatched<TA, TA, TC>(ctx, dp, false, true, t, t, hd, 1.0f, 1.0f, false, d, 3 * d, t, 13);
  }
}

// One level of batch, B broadcast over it (stride 0), transposed A, bias, beta = 1, padding.
TYPED_TEST(GemmTyped, BatchedBroadcastAndBias) {
  using TA = typename TypeParam::TA;
  using TC = typename TypeParam::TC;
  GemmContext ctx;
  const int64_t m = 9, n = 13, k = 21, lda = m + 2, ldb = n + 3, ldc = n + 1;
  GemmBatch bt{4, 1, k * lda + 5, 0, 0, 0, m * ldc + 2, 0};
  runBatched<TA, TA, TC>(ctx, bt, true, false, m, n, k, 1.0f, 1.0f, true, lda, ldb, ldc, 21);
  GemmBatch inner_only{1, 3, 0, k * lda, 0, k * ldb, 0, m * ldc};
  runBatched<TA, TA, TC>(ctx, inner_only, true, false, m, n, k, -2.0f, 0.0f, true, lda, ldb, ldc,
                         22);
}

// The reference itself on numbers worked out by hand: op(A) = [[1, 2], [3, 4]] (stored
// transposed), op(B) = [[5, 6], [7, 8]], alpha = 2, beta = 1, C = [[1, 1], [1, 1]],
// bias = [10, 20]: 2 * [[19, 22], [43, 50]] + 1 + bias.
TEST(GemmReference, HandWorkedExample) {
  const float a_t[] = {1, 3, 2, 4};  // A^T stored [K=2, M=2]
  const float b[] = {5, 6, 7, 8};
  const float bias[] = {10, 20};
  double c[] = {1, 1, 1, 1};
  ref::gemm(true, false, 2, 2, 2, 2.0f, a_t, 2, b, 2, 1.0f, c, 2, bias);
  EXPECT_EQ(c[0], 49);
  EXPECT_EQ(c[1], 65);
  EXPECT_EQ(c[2], 97);
  EXPECT_EQ(c[3], 121);
}

// K == 0: no product; C = beta * C + bias, and beta == 0 ignores C's (NaN) contents.
TEST(Gemm, EmptyReductionDimension) {
  GemmContext ctx;
  const int64_t m = 5, n = 7, ldc = 9;
  const float bias[] = {1, 2, 3, 4, 5, 6, 7};
  for (float beta : {0.0f, 1.0f}) {
    GuardedBuffer<bf16> c(m * ldc);
    c.fillPattern(0, m * ldc);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j)
        c[i * ldc + j] = beta == 0.0f ? nanOf<bf16>() : bf16(static_cast<float>(i));
    const bf16* none = nullptr;
    gemm(ctx, false, false, m, n, 0, 1.0f, none, 1, none, n, beta, c.data(), ldc, bias);
    for (int64_t i = 0; i < m; ++i) {
      EXPECT_TRUE(c.patternIntact(i * ldc + n, (i + 1) * ldc));
      for (int64_t j = 0; j < n; ++j)
        EXPECT_EQ(toFloat(c[i * ldc + j]), beta * static_cast<float>(i) + bias[j]);
    }
    EXPECT_TRUE(c.guardIntact());
  }
}

// M == 0 or N == 0: nothing is read or written.
TEST(Gemm, EmptyOutputTouchesNothing) {
  GemmContext ctx;
  GuardedBuffer<float> c(16);
  c.fillPattern(0, 16);
  const float a[4] = {1, 2, 3, 4};
  gemm(ctx, false, false, 0, 4, 1, 1.0f, a, 1, a, 4, 1.0f, c.data(), 4);
  gemm(ctx, false, false, 4, 0, 1, 1.0f, a, 1, a, 1, 1.0f, c.data(), 1);
  EXPECT_TRUE(c.patternIntact(0, 16));
  EXPECT_TRUE(c.guardIntact());
  EXPECT_EQ(ctx.cachedPrimitives(), 0u);
}

// One primitive per distinct problem: repeating a call reuses it; a new ld or beta creates one.
TEST(Gemm, PrimitiveCache) {
  GemmContext ctx;
  std::vector<float> a(64 * 64, 0.5f), b(64 * 64, 0.25f), c(64 * 64, 0.0f);
  gemm(ctx, false, true, 32, 32, 32, 1.0f, a.data(), 32, b.data(), 32, 0.0f, c.data(), 32);
  EXPECT_EQ(ctx.cachedPrimitives(), 1u);
  gemm(ctx, false, true, 32, 32, 32, 1.0f, a.data() + 1, 32, b.data(), 32, 0.0f, c.data(), 32);
  EXPECT_EQ(ctx.cachedPrimitives(), 1u);
  EXPECT_EQ(c[0], 32 * 0.5f * 0.25f);
  gemm(ctx, false, true, 32, 32, 32, 1.0f, a.data(), 64, b.data(), 32, 0.0f, c.data(), 32);
  EXPECT_EQ(ctx.cachedPrimitives(), 2u);
  gemm(ctx, false, true, 32, 32, 32, 1.0f, a.data(), 32, b.data(), 32, 1.0f, c.data(), 32);
  EXPECT_EQ(ctx.cachedPrimitives(), 3u);
  EXPECT_EQ(c[0], 2 * 32 * 0.5f * 0.25f);
}

TEST(Gemm, InvalidArgumentsAreRejected) {
  GemmContext ctx;
  std::vector<float> a(64, 1.0f), c(64, 0.0f);
  // lda narrower than a row of A.
  EXPECT_THROW(gemm(ctx, false, false, 4, 4, 4, 1.0f, a.data(), 3, a.data(), 4, 0.0f, c.data(), 4),
               Error);
  // trans_a: A is stored [K, M], so lda >= M.
  EXPECT_THROW(gemm(ctx, true, false, 5, 4, 2, 1.0f, a.data(), 4, a.data(), 4, 0.0f, c.data(), 4),
               Error);
  EXPECT_THROW(gemm(ctx, false, false, 4, 4, 4, 1.0f, a.data(), 4, a.data(), 4, 0.0f, c.data(), 3),
               Error);
  EXPECT_THROW(gemm(ctx, false, false, -1, 4, 4, 1.0f, a.data(), 4, a.data(), 4, 0.0f, c.data(), 4),
               Error);
  GemmCall mixed;
  mixed.m = mixed.n = mixed.k = 2;
  mixed.type_b = DType::kBF16;
  mixed.a = mixed.b = a.data();
  mixed.c = c.data();
  mixed.lda = mixed.ldb = mixed.ldc = 2;
  EXPECT_THROW(gemm(ctx, mixed), Error);
  // Batched outputs that overlap (row stride 4 but blocks 2 apart).
  GemmBatch overlap{2, 1, 8, 0, 8, 0, 2, 0};
  EXPECT_THROW(gemmBatched(ctx, overlap, false, false, 2, 4, 2, 1.0f, a.data(), 2, a.data(), 4,
                           0.0f, c.data(), 4),
               Error);
  EXPECT_EQ(ctx.cachedPrimitives(), 0u);
}

// Two threads sharing one context, each with its own shapes, get the right results.
TEST(Gemm, ConcurrentCallersShareAContext) {
  GemmContext ctx;
  auto worker = [&ctx](int id, bool* ok) {
    *ok = true;
    for (int rep = 0; rep < 8; ++rep) {
      const int64_t m = 10 + id * 7 + rep, n = 9 + rep, k = 31 + id;
      std::vector<bf16> a(m * k), b(k * n);
      for (int64_t i = 0; i < m * k; ++i) a[i] = bf16(static_cast<float>(i % 5) - 2.0f);
      for (int64_t i = 0; i < k * n; ++i) b[i] = bf16(static_cast<float>(i % 3) - 1.0f);
      std::vector<float> c(m * n);
      std::vector<double> want(m * n);
      gemm(ctx, false, false, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, c.data(), n);
      ref::gemm(false, false, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, want.data(), n);
      for (int64_t i = 0; i < m * n; ++i) *ok = *ok && c[i] == want[i];  // small integers: exact
    }
  };
  bool ok0 = false, ok1 = false;
  std::thread t0(worker, 0, &ok0), t1(worker, 1, &ok1);
  t0.join();
  t1.join();
  EXPECT_TRUE(ok0);
  EXPECT_TRUE(ok1);
}

TEST(Gemm, PeakMeasurementRuns) {
  GemmContext ctx;
  for (DType t : {DType::kF32, DType::kBF16, DType::kF16}) {
    const double flops = measureGemmPeakFlops(ctx, t, 48, 1);
    EXPECT_TRUE(std::isfinite(flops) && flops > 0.0) << dtypeName(t);
  }
  EXPECT_THROW(measureGemmPeakFlops(ctx, DType::kF32, 0, 1), Error);
}

}  // namespace
}  // namespace kdgrid::cpu
