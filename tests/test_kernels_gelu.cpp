// GELU (tanh approximation): fast vs reference for every dtype and odd lengths, sentinels,
// in-place use, reference values from PyTorch, reference backward vs finite differences.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <type_traits>
#include <vector>

#include "kernels/cpu/gelu.h"
#include "kernels/cpu/reference/gelu.h"
#include "tests/kernel_test_util.h"

namespace kdgrid {
namespace {

using test::allClose;
using test::GuardedBuffer;
using test::toFloats;

// Lengths around the 16-lane vectors and the 1024-element chunks, and one above the OpenMP
// threshold (2^16), whose 69 chunks are split over the threads (CTest runs this at 1 and 2).
const std::vector<int64_t> kLengths = {1, 3, 17, 64, 127, 255, 1000, 1025, 70001};

// x spread over [-8, 8] (where gelu goes from ~0 to ~x), with exact zeros, both signs of
// zero, and tails out to +-12 where exp(-2u) reaches the clamp.
template <typename T>
void fillGeluInputs(GuardedBuffer<T>& x, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-8.0f, 8.0f);
  const float specials[] = {0.0f, -0.0f, 12.0f, -12.0f, 1.0f, -1.0f, 1e-6f, -1e-6f, -10.0f};
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = fromFloat<T>(i % 97 < 9 ? specials[i % 97] : u(rng));
  }
}

template <typename T>
class GeluTyped : public ::testing::Test {};
using StorageTypes = ::testing::Types<float, bf16, f16>;
TYPED_TEST_SUITE(GeluTyped, StorageTypes);

// Values near 0 (gelu(-12) ~ 1e-30, subnormal fp16): 1e-7 absolute on top of rtol. gelu'
// crosses zero at x ~ -0.75 where its O(1) terms cancel: fp32 leaves ~1e-8 * |dout| there.
constexpr double kAtol = 1e-7;
constexpr double kAtolBackward = 1e-6;

TYPED_TEST(GeluTyped, ForwardMatchesReference) {
  using T = TypeParam;
  for (int64_t n : kLengths) {
    SCOPED_TRACE(testing::Message() << "n " << n);
    GuardedBuffer<T> x(n), out(n);
    fillGeluInputs(x, static_cast<uint32_t>(n));
    const std::vector<float> xf = toFloats(x.data(), n);
    std::vector<float> ref(n);
    cpu::ref::geluForward(ref.data(), xf.data(), n);
    cpu::geluForward(out.data(), x.data(), n);
    EXPECT_TRUE(
        allClose(toFloats(out.data(), n).data(), ref.data(), n, {kAtol, test::storageRtol<T>()}));
    EXPECT_TRUE(out.guardIntact());

    // In place (out == x) gives the same bits.
    cpu::geluForward(x.data(), x.data(), n);
    EXPECT_TRUE(test::sameBits(x.data(), out.data(), n));
    EXPECT_TRUE(x.guardIntact());
  }
}

TYPED_TEST(GeluTyped, BackwardMatchesReference) {
  using T = TypeParam;
  for (int64_t n : kLengths) {
    SCOPED_TRACE(testing::Message() << "n " << n);
    GuardedBuffer<T> x(n), dout(n), dx(n);
    fillGeluInputs(x, static_cast<uint32_t>(n + 1));
    std::mt19937 rng(static_cast<uint32_t>(n));
    test::fillUniform(dout.data(), n, rng, -2.0f, 2.0f);
    test::fillUniform(dx.data(), n, rng, -2.0f, 2.0f);  // must be overwritten
    const std::vector<float> xf = toFloats(x.data(), n);
    const std::vector<float> df = toFloats(dout.data(), n);
    std::vector<float> ref(n);
    cpu::ref::geluBackward(ref.data(), df.data(), xf.data(), n);
    cpu::geluBackward(dx.data(), dout.data(), x.data(), n);
    EXPECT_TRUE(allClose(toFloats(dx.data(), n).data(), ref.data(), n,
                         {kAtolBackward, test::storageRtol<T>()}));
    EXPECT_TRUE(dx.guardIntact());

    // dx may alias dout.
    cpu::geluBackward(dout.data(), dout.data(), x.data(), n);
    EXPECT_TRUE(test::sameBits(dout.data(), dx.data(), n));
    EXPECT_TRUE(dout.guardIntact());
  }
}

// The training pair: forward with gelu' stored, backward as one multiply. The values match
// geluForward bit for bit; the backward matches the reference, and in fp32 geluBackward bit
// for bit (the model relies on it: switching kernels must not change fp32 training).
TYPED_TEST(GeluTyped, DerivativePairMatchesReference) {
  using T = TypeParam;
  for (int64_t n : kLengths) {
    SCOPED_TRACE(testing::Message() << "n " << n);
    GuardedBuffer<T> x(n), out(n), deriv(n), plain(n), dout(n), dx(n), dx_plain(n);
    fillGeluInputs(x, static_cast<uint32_t>(n + 2));
    std::mt19937 rng(static_cast<uint32_t>(n + 3));
    test::fillUniform(dout.data(), n, rng, -2.0f, 2.0f);
    test::fillUniform(dx.data(), n, rng, -2.0f, 2.0f);  // must be overwritten
    cpu::geluForwardWithDerivative(out.data(), deriv.data(), x.data(), n);
    cpu::geluForward(plain.data(), x.data(), n);
    EXPECT_TRUE(test::sameBits(out.data(), plain.data(), n));

    const std::vector<float> xf = toFloats(x.data(), n);
    const std::vector<float> df = toFloats(dout.data(), n);
    std::vector<float> ref(n);
    cpu::ref::geluBackward(ref.data(), df.data(), xf.data(), n);
    cpu::geluBackwardFromDerivative(dx.data(), dout.data(), deriv.data(), n);
    // bf16/f16: gelu' is rounded to storage before the product, one more rounding than
    // geluBackward's: twice the storage tolerance.
    EXPECT_TRUE(allClose(toFloats(dx.data(), n).data(), ref.data(), n,
                         {kAtolBackward, (std::is_same_v<T, float> ? 1 : 2) *
                                             test::storageRtol<T>()}));
    if constexpr (std::is_same_v<T, float>) {
      cpu::geluBackward(dx_plain.data(), dout.data(), x.data(), n);
      EXPECT_TRUE(test::sameBits(dx.data(), dx_plain.data(), n));
    }
    EXPECT_TRUE(out.guardIntact() && deriv.guardIntact() && dx.guardIntact());

    // In place as the model uses it: gelu' over x, dx over dout.
    cpu::geluForwardWithDerivative(out.data(), x.data(), x.data(), n);
    EXPECT_TRUE(test::sameBits(x.data(), deriv.data(), n));
    EXPECT_TRUE(test::sameBits(out.data(), plain.data(), n));
    cpu::geluBackwardFromDerivative(dout.data(), dout.data(), x.data(), n);
    EXPECT_TRUE(test::sameBits(dout.data(), dx.data(), n));
    EXPECT_TRUE(x.guardIntact() && out.guardIntact() && dout.guardIntact());
  }
}

// Reference values: torch.nn.functional.gelu(x, approximate="tanh") in float64 (PyTorch
// 1.13), i.e. GPT-2's formula; the fast version is tested against the reference above.
TEST(GeluReference, MatchesPyTorchTanhApproximation) {
  const double x[] = {1.0, -1.0, 2.0, -3.0, 0.5, 0.0};
  const double want[] = {0.8411919906082768,     -0.15880800939172324, 1.954597694087775,
                         -0.0036373920817729943, 0.34571400982514394,  0.0};
  double got[6];
  cpu::ref::geluForward(got, x, 6);
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(got[i], want[i], 1e-15) << x[i];
  float fast[6];
  const float xs[] = {1.0f, -1.0f, 2.0f, -3.0f, 0.5f, 0.0f};
  cpu::geluForward(fast, xs, 6);
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(fast[i], want[i], 1e-6 * std::fabs(want[i])) << x[i];
}

// d/dx of the reference forward by central differences, in double.
TEST(GeluReference, BackwardMatchesFiniteDifferences) {
  std::vector<double> x;
  for (double v = -6.0; v <= 6.0; v += 0.37) x.push_back(v);
  x.push_back(0.0);
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<double> dout(n), dx(n);
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> u(-2.0, 2.0);
  for (auto& d : dout) d = u(rng);
  cpu::ref::geluBackward(dx.data(), dout.data(), x.data(), n);
  const double h = 1e-6;
  for (int64_t i = 0; i < n; ++i) {
    double xp = x[i] + h, xm = x[i] - h, fp, fm;
    cpu::ref::geluForward(&fp, &xp, 1);
    cpu::ref::geluForward(&fm, &xm, 1);
    EXPECT_NEAR(dx[i], dout[i] * (fp - fm) / (2 * h), 1e-8) << "x = " << x[i];
  }
}

}  // namespace
}  // namespace kdgrid
