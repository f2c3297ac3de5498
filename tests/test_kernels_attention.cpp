// Attention: the fast kernels against the double reference over a sweep of shapes, windows
// and storage types; the reference backward against finite differences; the window edge
// cases (W >= T is full causal, W = 1 attends only itself); thread-count independence.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <string>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/reference/attention.h"
#include "tests/kernel_test_util.h"

namespace kdgrid {
namespace {

using test::allClose;
using test::GuardedBuffer;
using test::Tolerance;
using test::toFloats;
using test::toStorage;

struct Shape {
  int64_t batch, seq, heads, hd, window;
  int64_t channels() const { return heads * hd; }
  int64_t qkvSize() const { return batch * seq * 3 * channels(); }
  int64_t outSize() const { return batch * seq * channels(); }
  int64_t lseSize() const { return batch * heads * seq; }
  std::string str() const {
    return "B=" + std::to_string(batch) + " T=" + std::to_string(seq) +
           " nh=" + std::to_string(heads) + " hd=" + std::to_string(hd) +
           " W=" + std::to_string(window);
  }
};

// Relative tolerance per storage type. Outputs are rounded once to the storage type (bf16: 8
// significant bits, half-ulp 2^-9 = 2e-3; fp16: 11 bits, 2^-12 = 2.4e-4) after fp32 math, so
// rtol is a few storage ulps: bf16 1e-2, fp16 2e-3. fp32: sums of <= 128 products of unit-size
// terms in fp32 (2^-24 = 6e-8 each, ~sqrt(n) growth) plus the ~1 ulp exp stay near 1e-6; 1e-5
// leaves a 10x margin.
template <typename T>
double rtolFor() {
  if constexpr (std::is_same_v<T, float>) return 1e-5;
  if constexpr (std::is_same_v<T, bf16>) return 1e-2;
  return 2e-3;
}

// Tolerance for a tensor whose entries are sums of terms as large as the tensor's largest
// entry (outputs, gradients): cancellation makes individual entries small while their rounding
// error is not, so atol is rtol times the tensor's max |ref|.
// `condition` widens the rule where the inputs make the result ill-conditioned.
template <typename T, typename V>
Tolerance tensorTol(const V& ref, double condition = 1.0) {
  const double rtol = rtolFor<T>() * condition;
  return {rtol * test::maxAbs(ref), rtol};
}

// Columns [part*C, (part+1)*C) of a [rows, 3C] tensor (part 0 = Q, 1 = K, 2 = V).
template <typename V>
auto qkvPart(const V& v, int64_t rows, int64_t channels, int64_t part) {
  std::vector<std::decay_t<decltype(v[0])>> out;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < channels; ++c) out.push_back(v[r * 3 * channels + part * channels + c]);
  return out;
}

// Inputs in storage type T and the same values in fp32 for the reference.
template <typename T>
struct Inputs {
  std::vector<T> qkv, dout;
  std::vector<float> qkv_f, dout_f;
  Inputs(const Shape& s, uint32_t seed, float qk_std = 1.0f) {
    qkv = toStorage<T>(test::normalValues(s.qkvSize(), seed, qk_std));
    dout = toStorage<T>(test::normalValues(s.outSize(), seed + 1));
    qkv_f = toFloats(qkv);
    dout_f = toFloats(dout);
  }
};

// Fast forward + backward results with their guard checks.
template <typename T>
struct FastRun {
  GuardedBuffer<T> out;
  GuardedBuffer<float> lse;
  GuardedBuffer<T> dqkv;
  FastRun(const Shape& s, const Inputs<T>& in)
      : out(s.outSize()), lse(s.lseSize()), dqkv(s.qkvSize()) {
    cpu::attentionForward(out.data(), lse.data(), in.qkv.data(), s.batch, s.seq, s.channels(), s.hd,
                          s.window);
    cpu::attentionBackward(dqkv.data(), in.dout.data(), in.qkv.data(), lse.data(), s.batch, s.seq,
                           s.channels(), s.hd, s.window);
  }
  bool guardsIntact() const { return out.guardIntact() && lse.guardIntact() && dqkv.guardIntact(); }
};

// Compares the fast kernels with the reference on one shape.
template <typename T>
void expectMatchesReference(const Shape& s, uint32_t seed, float qk_std = 1.0f,
                            double condition = 1.0) {
  SCOPED_TRACE(s.str() + " " + std::string(dtypeName(dtypeOf<T>())));
  const Inputs<T> in(s, seed, qk_std);
  const FastRun<T> fast(s, in);
  EXPECT_TRUE(fast.guardsIntact());

  std::vector<float> out(s.outSize()), lse(s.lseSize()), dqkv(s.qkvSize());
  cpu::ref::attentionForward(out.data(), lse.data(), in.qkv_f.data(), s.batch, s.seq, s.channels(),
                             s.hd, s.window);
  cpu::ref::attentionBackward(dqkv.data(), in.dout_f.data(), in.qkv_f.data(), s.batch, s.seq,
                              s.channels(), s.hd, s.window);

  EXPECT_TRUE(allClose(fast.out.data(), out.data(), out.size(), tensorTol<T>(out, condition)))
      << "out";
  // lse is fp32 from the same (rounded) inputs in every storage type: only fp32 rounding of
  // scores of size ~|lse|, so the fp32 rule applies.
  EXPECT_TRUE(allClose(fast.lse.data(), lse.data(), lse.size(), tensorTol<float>(lse, condition)))
      << "lse";
  const int64_t rows = s.batch * s.seq;
  const auto fast_dqkv = fast.dqkv.values();
  const char* names[3] = {"dQ", "dK", "dV"};
  for (int part = 0; part < 3; ++part) {
    const auto got = qkvPart(fast_dqkv, rows, s.channels(), part);
    const auto ref = qkvPart(dqkv, rows, s.channels(), part);
    EXPECT_TRUE(allClose(got.data(), ref.data(), ref.size(), tensorTol<T>(ref, condition)))
        << names[part];
  }
}

template <typename T>
class AttentionTyped : public ::testing::Test {};
using StorageTypes = ::testing::Types<float, bf16, f16>;
TYPED_TEST_SUITE(AttentionTyped, StorageTypes);

// Threads (CTest runs this at 1 and 2): the kernels split the (batch, head) pairs over the
// threads whenever there are two or more (2 to 8 here, also odd counts: an uneven split);
// batch = heads = 1 is one pair, never split.
TYPED_TEST(AttentionTyped, FastMatchesReferenceOverShapes) {
  uint32_t seed = 1;
  for (int64_t batch : {1, 2})
    for (int64_t seq : {1, 2, 17, 64, 128})
      for (int64_t heads : {1, 3, 4})
        for (int64_t hd : {8, 16, 64})
          for (int64_t window : {int64_t{0}, int64_t{1}, int64_t{5}, seq, seq + 3}) {
            expectMatchesReference<TypeParam>({batch, seq, heads, hd, window}, seed++);
            if (this->HasFailure()) return;  // one failing shape is enough to read
          }
}

TYPED_TEST(AttentionTyped, HeadDimsNotMultipleOf16) {
  for (int64_t hd : {1, 3, 24, 40})
    expectMatchesReference<TypeParam>({2, 33, 2, hd, 0}, 100 + uint32_t(hd));
  expectMatchesReference<TypeParam>({1, 47, 3, 24, 9}, 7);
}

// Scores ~ N(0, 25^2) (q, k ~ N(0, 5^2)): softmax rows dominated by a few keys, where a
// missing max subtraction would overflow exp. A score's fp32 rounding error (relative to
// sum |q_c k_c| / sqrt(hd), ~25x the unit case) is an absolute error of log p, so errors grow
// by that factor: condition 30.
TEST(Attention, LargeScoresStayFiniteAndAccurate) {
  expectMatchesReference<float>({2, 100, 2, 64, 0}, 11, 5.0f, 30.0);
  expectMatchesReference<float>({1, 70, 1, 16, 7}, 12, 5.0f, 30.0);
  // bf16: the output rounding (2^-9) still dominates the score error: the plain rule.
  expectMatchesReference<bf16>({2, 64, 2, 64, 0}, 13, 5.0f);
}

// W >= T admits the same keys as W = 0, so the fast kernels give bit-identical results.
TYPED_TEST(AttentionTyped, WindowAtLeastSeqIsFullCausal) {
  for (int64_t seq : {1, 17, 64, 100}) {
    const Shape full{2, seq, 3, 16, 0};
    const Inputs<TypeParam> in(full, 200 + uint32_t(seq));
    const FastRun<TypeParam> a(full, in);
    for (int64_t window : {seq, seq + 3}) {
      Shape windowed = full;
      windowed.window = window;
      const FastRun<TypeParam> b(windowed, in);
      EXPECT_EQ(0, std::memcmp(a.out.data(), b.out.data(), full.outSize() * sizeof(TypeParam)));
      EXPECT_EQ(0, std::memcmp(a.lse.data(), b.lse.data(), full.lseSize() * sizeof(float)));
      EXPECT_EQ(0, std::memcmp(a.dqkv.data(), b.dqkv.data(), full.qkvSize() * sizeof(TypeParam)));
    }
    // And a window shorter than T changes the result (the comparison above can fail).
    if (seq >= 17) {
      Shape shorter = full;
      shorter.window = seq / 2;
      const FastRun<TypeParam> c(shorter, in);
      EXPECT_NE(0, std::memcmp(a.out.data(), c.out.data(), full.outSize() * sizeof(TypeParam)));
    }
  }
  // The reference agrees with itself in the same way.
  const Shape s{1, 20, 2, 8, 0};
  const Inputs<float> in(s, 300);
  std::vector<float> full(s.outSize()), windowed(s.outSize());
  cpu::ref::attentionForward(full.data(), static_cast<float*>(nullptr), in.qkv_f.data(), 1, 20, 16,
                             8, 0);
  cpu::ref::attentionForward(windowed.data(), static_cast<float*>(nullptr), in.qkv_f.data(), 1, 20,
                             16, 8, 23);
  EXPECT_EQ(full, windowed);
}

// W = 1: query t sees only key t, so its probability is exactly 1: out = V_t, dV = dO and
// dQ = dK = 0 exactly (dS = 1 * (dP - 1 * dP)), lse = q_t . k_t / sqrt(hd).
TYPED_TEST(AttentionTyped, WindowOneAttendsOnlyItself) {
  const Shape s{2, 37, 3, 16, 1};
  const Inputs<TypeParam> in(s, 400);
  const FastRun<TypeParam> fast(s, in);
  EXPECT_TRUE(fast.guardsIntact());
  const int64_t rows = s.batch * s.seq, c3 = 3 * s.channels();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < s.channels(); ++c) {
      ASSERT_EQ(toFloat(fast.out[r * s.channels() + c]),
                toFloat(in.qkv[r * c3 + 2 * s.channels() + c]))
          << "row " << r << " col " << c;
      ASSERT_EQ(toFloat(fast.dqkv[r * c3 + 2 * s.channels() + c]),
                toFloat(in.dout[r * s.channels() + c]));
      ASSERT_EQ(toFloat(fast.dqkv[r * c3 + c]), 0.0f);
      ASSERT_EQ(toFloat(fast.dqkv[r * c3 + s.channels() + c]), 0.0f);
    }
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.heads; ++h)
      for (int64_t t = 0; t < s.seq; ++t) {
        double dot = 0;
        const int64_t row = (b * s.seq + t) * c3;
        for (int64_t c = 0; c < s.hd; ++c)
          dot += double(in.qkv_f[row + h * s.hd + c]) * in.qkv_f[row + s.channels() + h * s.hd + c];
        EXPECT_NEAR(fast.lse[(b * s.heads + h) * s.seq + t], dot / 4.0,
                    1e-5 * (1 + std::fabs(dot)));
      }
}

// The fast forward without lse (evaluation) gives the same output.
TEST(Attention, ForwardWithoutLse) {
  const Shape s{2, 40, 2, 16, 6};
  const Inputs<float> in(s, 500);
  const FastRun<float> with(s, in);
  GuardedBuffer<float> out(s.outSize());
  cpu::attentionForward(out.data(), nullptr, in.qkv.data(), s.batch, s.seq, s.channels(), s.hd,
                        s.window);
  EXPECT_TRUE(out.guardIntact());
  EXPECT_EQ(0, std::memcmp(out.data(), with.out.data(), s.outSize() * sizeof(float)));
}

// Each (batch, head) is computed by one thread in a fixed order: any thread count gives the
// same bits.
TEST(Attention, ThreadCountDoesNotChangeResults) {
  const Shape s{3, 50, 3, 64, 0};
  const Inputs<bf16> in(s, 600);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const FastRun<bf16> one(s, in);
  omp_set_num_threads(3);
  const FastRun<bf16> three(s, in);
  omp_set_num_threads(saved);
  EXPECT_TRUE(three.guardsIntact());
  EXPECT_EQ(0, std::memcmp(one.out.data(), three.out.data(), s.outSize() * sizeof(bf16)));
  EXPECT_EQ(0, std::memcmp(one.dqkv.data(), three.dqkv.data(), s.qkvSize() * sizeof(bf16)));
}

// The reference backward against central differences of L = sum(out * G) in double.
TEST(AttentionReference, BackwardMatchesFiniteDifferences) {
  for (int64_t window : {0, 1, 2}) {
    const Shape s{2, 5, 2, 3, window};
    SCOPED_TRACE(s.str());
    std::vector<double> qkv, g;
    for (float x : test::normalValues(s.qkvSize(), 700 + uint32_t(window))) qkv.push_back(x);
    for (float x : test::normalValues(s.outSize(), 800 + uint32_t(window))) g.push_back(x);
    auto loss = [&](const std::vector<double>& x) {
      std::vector<double> out(s.outSize());
      cpu::ref::attentionForward(out.data(), static_cast<double*>(nullptr), x.data(), s.batch,
                                 s.seq, s.channels(), s.hd, s.window);
      double l = 0;
      for (size_t i = 0; i < out.size(); ++i) l += out[i] * g[i];
      return l;
    };
    std::vector<double> grad(s.qkvSize());
    cpu::ref::attentionBackward(grad.data(), g.data(), qkv.data(), s.batch, s.seq, s.channels(),
                                s.hd, s.window);
    const std::vector<double> fd = test::centralDifferences(loss, qkv);
    EXPECT_TRUE(allClose(grad.data(), fd.data(), fd.size(), Tolerance{1e-8, 1e-6}));
    EXPECT_GT(test::maxAbs(grad), 0.1);  // the check is not vacuous
  }
}

// The reference forward's lse against a direct computation, and the forward's rows sum to one
// (out of V = all ones is 1).
TEST(AttentionReference, RowsAreNormalised) {
  const Shape s{1, 9, 1, 4, 3};
  std::vector<double> qkv(s.qkvSize());
  const auto r = test::normalValues(s.qkvSize(), 900);
  for (int64_t i = 0; i < s.qkvSize(); ++i) qkv[i] = (i % 12) >= 8 ? 1.0 : r[i];
  std::vector<double> out(s.outSize()), lse(s.lseSize());
  cpu::ref::attentionForward(out.data(), lse.data(), qkv.data(), 1, 9, 4, 4, 3);
  for (double o : out) EXPECT_NEAR(o, 1.0, 1e-15);
  // Row 0 attends only key 0.
  double dot = 0;
  for (int c = 0; c < 4; ++c) dot += qkv[c] * qkv[4 + c];
  EXPECT_NEAR(lse[0], dot / 2.0, 1e-14);
}

}  // namespace
}  // namespace kdgrid
