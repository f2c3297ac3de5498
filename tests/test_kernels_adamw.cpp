// AdamW: a two-step example worked out by hand, fast vs reference over several steps (with
// and without decay, tiny gradients where eps matters), the low-precision copy, the
// sum-of-squares and all-finite helpers.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "kernels/cpu/adamw.h"
#include "kernels/cpu/reference/adamw.h"
#include "tests/kernel_test_util.h"

namespace kdgrid {
namespace {

using test::allClose;
using test::GuardedBuffer;

// Two steps on three parameters, lr 0.1, betas 0.9 / 0.95, eps 1e-8, weight decay 0.1 on
// the first two only, grad_scale 0.5.
//   step 1: raw grads (2, 2, 2) -> g = 1. m = 0.1, v = 0.05, bias corrections 0.1 and 0.05
//           give m_hat = v_hat = 1, so the Adam term is 1 / (1 + eps).
//           p0 = 1: 1 - 0.1 * (1/(1+eps) + 0.1 * 1) = 0.89 (to 1e-9)
//           p1 = -2: -2 - 0.1 * (1/(1+eps) + 0.1 * -2) = -2.08
//           p2 = 1 (no decay): 1 - 0.1 * 1/(1+eps) = 0.9
//   step 2: raw grads (-4, -4, -4) -> g = -2. m = 0.09 - 0.2 = -0.11,
//           v = 0.0475 + 0.2 = 0.2475, corrections 1 - 0.81 = 0.19 and 1 - 0.9025 = 0.0975:
//           m_hat = -11/19, v_hat = 2475/975 = 33/13, Adam term a = (-11/19) / sqrt(33/13).
//           p0 = 0.89 - 0.1 * (a + 0.1 * 0.89); p1 = -2.08 - 0.1 * (a - 0.208);
//           p2 = 0.9 - 0.1 * a.
TEST(AdamW, TwoStepsByHand) {
  const double a = (-11.0 / 19.0) / std::sqrt(33.0 / 13.0);
  const double want1[3] = {0.89, -2.08, 0.9};
  const double want2[3] = {0.89 - 0.1 * (a + 0.089), -2.08 - 0.1 * (a - 0.208), 0.9 - 0.1 * a};
  cpu::AdamWConfig config;
  config.lr = 0.1f;
  config.weight_decay = 0.1f;
  EXPECT_FLOAT_EQ(config.beta1, 0.9f);  // GPT-2 / llm.c defaults
  EXPECT_FLOAT_EQ(config.beta2, 0.95f);
  EXPECT_FLOAT_EQ(config.eps, 1e-8f);

  for (int impl = 0; impl < 2; ++impl) {
    SCOPED_TRACE(impl == 0 ? "fast" : "reference");
    std::vector<float> p = {1.0f, -2.0f, 1.0f}, m(3, 0.0f), v(3, 0.0f);
    const float g1[3] = {2, 2, 2}, g2[3] = {-4, -4, -4};
    auto step = [&](const float* g, int64_t t) {
      // Elements 0..1 decay, element 2 does not: two calls over sub-ranges, as the
      // optimizer does per tensor.
      if (impl == 0) {
        cpu::adamwStep<bf16>(p.data(), m.data(), v.data(), g, nullptr, 2, config, t, 0.5f, true);
        cpu::adamwStep<bf16>(p.data() + 2, m.data() + 2, v.data() + 2, g + 2, nullptr, 1, config, t,
                             0.5f, false);
      } else {
        cpu::ref::adamwStep(p.data(), m.data(), v.data(), g, 2, config, t, 0.5f, true);
        cpu::ref::adamwStep(p.data() + 2, m.data() + 2, v.data() + 2, g + 2, 1, config, t, 0.5f,
                            false);
      }
    };
    step(g1, 1);
    for (int i = 0; i < 3; ++i) EXPECT_NEAR(p[i], want1[i], 1e-6) << i;
    EXPECT_NEAR(m[0], 0.1, 1e-7);
    EXPECT_NEAR(v[0], 0.05, 1e-7);
    step(g2, 2);
    for (int i = 0; i < 3; ++i) EXPECT_NEAR(p[i], want2[i], 1e-6) << i;
    EXPECT_NEAR(m[1], -0.11, 1e-7);
    EXPECT_NEAR(v[1], 0.2475, 1e-7);
  }
}

template <typename T>
class AdamWTyped : public ::testing::Test {};
using StorageTypes = ::testing::Types<float, bf16, f16>;
TYPED_TEST_SUITE(AdamWTyped, StorageTypes);

// Four steps of fast vs reference from the same state. The fast version works in fp32 where
// the reference works in double and rounds once per step: a few ulp apart (2e-6 relative).
// Every fifth gradient is tiny (1e-9) so that sqrt(v_hat) ~ eps and eps matters.
TYPED_TEST(AdamWTyped, MatchesReferenceOverSteps) {
  using T = TypeParam;
  for (int64_t n : {1, 17, 1000, 1025, 70003}) {
    for (bool decay : {true, false}) {
      SCOPED_TRACE(testing::Message() << "n " << n << " decay " << decay);
      std::mt19937 rng(static_cast<uint32_t>(n + decay));
      GuardedBuffer<float> p(n), m(n), v(n);
      GuardedBuffer<T> copy(n);
      test::fillUniform(p.data(), n, rng, -1.0f, 1.0f);
      std::vector<float> rp(p.data(), p.data() + n), rm(n, 0.0f), rv(n, 0.0f);
      std::vector<float> grad(n);
      cpu::AdamWConfig config;
      config.lr = 1e-3f;
      config.weight_decay = 0.1f;
      for (int64_t t = 1; t <= 4; ++t) {
        for (int64_t i = 0; i < n; ++i) {
          const float scale = i % 5 == 4 ? 1e-9f : 1.0f;
          grad[i] = scale * std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng);
        }
        const float grad_scale = 0.7f;
        cpu::adamwStep(p.data(), m.data(), v.data(), grad.data(), copy.data(), n, config, t,
                       grad_scale, decay);
        cpu::ref::adamwStep(rp.data(), rm.data(), rv.data(), grad.data(), n, config, t, grad_scale,
                            decay);
      }
      // atol: p and m can cancel to near zero (p - lr * update, 0.9 m + 0.1 g); fp32 then
      // leaves an absolute error of a few ulp of the O(1e-3) / O(1) terms. v never cancels.
      EXPECT_TRUE(allClose(p.data(), rp.data(), n, {1e-8, 2e-6}));
      EXPECT_TRUE(allClose(m.data(), rm.data(), n, {1e-7, 2e-6}));
      EXPECT_TRUE(allClose(v.data(), rv.data(), n, {0.0, 2e-6}));
      // The copy is exactly T(param) as dtype.h rounds it.
      size_t copy_mismatch = 0;
      for (int64_t i = 0; i < n; ++i) {
        const T want = fromFloat<T>(p[i]);
        copy_mismatch += !test::sameBits(&copy[i], &want, 1);
      }
      EXPECT_EQ(copy_mismatch, 0u);
      EXPECT_TRUE(p.guardIntact());
      EXPECT_TRUE(m.guardIntact());
      EXPECT_TRUE(v.guardIntact());
      EXPECT_TRUE(copy.guardIntact());
    }
  }
}

TEST(AdamW, NoCopyWhenNull) {
  std::vector<float> p = {1, 2, 3}, m(3, 0), v(3, 0), g = {1, 1, 1};
  cpu::AdamWConfig config;
  cpu::adamwStep<f16>(p.data(), m.data(), v.data(), g.data(), nullptr, 3, config, 1, 1.0f, true);
  EXPECT_LT(p[0], 1.0f);  // the update itself happened
}

TEST(SumSquares, ExactOnIntegers) {
  // x = 1..n: every square and partial sum is an integer below 2^53, so the double sum is
  // exact and equals n (n + 1) (2n + 1) / 6, whatever the blocking.
  for (int64_t n : {1, 3, 17, 1000, 16384, 16385, 100003}) {
    std::vector<float> x(n);
    for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>(i + 1);
    const double want = static_cast<double>(n) * (n + 1) * (2 * n + 1) / 6;
    EXPECT_EQ(cpu::sumSquares(x.data(), n), want) << n;
    EXPECT_EQ(cpu::ref::sumSquares(x.data(), n), want) << n;
  }
  EXPECT_EQ(cpu::sumSquares(nullptr, 0), 0.0);
}

TEST(SumSquares, MatchesReferenceAndThreadCount) {
  const int64_t n = 300007;
  std::mt19937 rng(1);
  GuardedBuffer<float> x(n);
  test::fillUniform(x.data(), n, rng, -3.0f, 3.0f);
  const double ref = cpu::ref::sumSquares(x.data(), n);
  double fast[2];
  for (int t = 0; t < 2; ++t) {
    test::ScopedThreads threads(t + 1);
    fast[t] = cpu::sumSquares(x.data(), n);
  }
  // Double sums of fp32 squares in a different order: ~1e-16 relative per add.
  EXPECT_NEAR(fast[0], ref, 1e-12 * ref);
  EXPECT_EQ(fast[0], fast[1]);  // fixed blocks: independent of the thread count
}

template <typename T>
class AllFiniteTyped : public ::testing::Test {};
TYPED_TEST_SUITE(AllFiniteTyped, StorageTypes);

TYPED_TEST(AllFiniteTyped, FindsInfAndNanAnywhere) {
  using T = TypeParam;
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int64_t n : {1, 17, 1024, 70001}) {
    // The guard after the buffer holds NaN bit patterns: reading past n would show.
    GuardedBuffer<T> x(n);
    std::mt19937 rng(static_cast<uint32_t>(n));
    test::fillUniform(x.data(), n, rng, -100.0f, 100.0f);
    EXPECT_TRUE(cpu::allFinite(x.data(), n)) << n;
    EXPECT_TRUE(cpu::ref::allFinite(x.data(), n)) << n;
    for (int64_t pos : {int64_t{0}, n / 2, n - 1}) {
      for (float bad : {inf, -inf, nan}) {
        const T saved = x[pos];
        x[pos] = fromFloat<T>(bad);
        EXPECT_FALSE(cpu::allFinite(x.data(), n)) << n << " at " << pos << " " << bad;
        EXPECT_FALSE(cpu::ref::allFinite(x.data(), n));
        x[pos] = saved;
      }
    }
    EXPECT_TRUE(cpu::allFinite(x.data(), n));
  }
  // Largest finite values are finite; fp16 overflows to inf above 65504.
  // (bf16's largest is 0x7f7f; FLT_MAX itself rounds up to bf16 inf.)
  const float big = std::is_same_v<T, f16>    ? 65504.0f
                    : std::is_same_v<T, bf16> ? std::bit_cast<float>(0x7f7f0000u)
                                              : std::numeric_limits<float>::max();
  T edge[2] = {fromFloat<T>(big), fromFloat<T>(-big)};
  EXPECT_TRUE(cpu::allFinite(edge, 2));
  if constexpr (std::is_same_v<T, f16>) {
    T overflow[1] = {fromFloat<T>(70000.0f)};
    EXPECT_FALSE(cpu::allFinite(overflow, 1));
  }
}

}  // namespace
}  // namespace kdgrid
