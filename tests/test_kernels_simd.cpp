// The vector exp that the softmax kernels share (kernels/cpu/simd.h): accuracy against
// std::exp in double, and its edge values.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "kernels/cpu/simd.h"

namespace kdgrid::cpu::simd {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// Worst relative error over a dense sweep of [lo, hi) whose results are normal floats.
template <typename Exp>
double worstRelativeError(Exp exp, float lo, float hi) {
  double worst = 0;
  alignas(64) float x[kLanes];
  int i = 0;
  for (float v = lo; v < hi; v += 1e-3f) {
    x[i++] = v;
    if (i < kLanes) continue;
    i = 0;
    const Vec16f y = exp(load16(x));
    for (int l = 0; l < kLanes; ++l) {
      const double ref = std::exp(double(x[l]));
      if (ref < double(std::numeric_limits<float>::min())) continue;
      worst = std::max(worst, std::fabs(y[l] - ref) / ref);
    }
  }
  return worst;
}

// fp32 rounding alone is up to 2^-24 = 6e-8 relative; 1.5e-7 allows ~2.5 ulp at the bottom
// of a binade, so a wrong coefficient or range reduction (errors >= 1e-6) fails.
constexpr double kMaxRelError = 1.5e-7;

TEST(SimdExp, AccurateOverTheNormalRange) {
  EXPECT_LT(worstRelativeError(exp16, -87.3f, 88.7f), kMaxRelError);
  EXPECT_LT(worstRelativeError(expBounded16, -87.3f, 88.0f), kMaxRelError);
}

TEST(SimdExp, EdgeValues) {
  for (auto exp : {exp16, expBounded16}) {
    EXPECT_EQ(exp(splat16(0.0f))[3], 1.0f);    // exactly: a softmax of one element is 1
    EXPECT_EQ(exp(splat16(-kInf))[0], 0.0f);   // masked scores
    EXPECT_EQ(exp(splat16(-88.0f))[5], 0.0f);  // below the normal range: flushed to 0
    EXPECT_TRUE(std::isnan(exp(splat16(std::nanf("")))[7]));
  }
  EXPECT_EQ(exp16(splat16(89.0f))[0], kInf);
  EXPECT_EQ(exp16(splat16(kInf))[0], kInf);
  // Just below overflow: 2^127 * 1.99... must not overflow inside the scaling.
  EXPECT_NEAR(exp16(splat16(88.7f))[0] / std::exp(double(88.7f)), 1.0, kMaxRelError);
}

TEST(SimdExp, MaxOfRow) {
  alignas(64) float x[64];
  for (int i = 0; i < 64; ++i) x[i] = float(-i);
  x[37] = 5.0f;
  EXPECT_EQ(max16n(x, 64), 5.0f);
  EXPECT_EQ(max16n(x, 32), 0.0f);
  EXPECT_EQ(max16n(x, 0), -kInf);
}

}  // namespace
}  // namespace kdgrid::cpu::simd
