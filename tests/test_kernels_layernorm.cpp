// LayerNorm: fast vs scalar reference (every dtype, odd shapes, sentinels), reference
// backward vs central finite differences in double, thread-count independence.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <utility>
#include <vector>

#include "kernels/cpu/layernorm.h"
#include "kernels/cpu/reference/layernorm.h"
#include "tests/kernel_test_util.h"

namespace kdgrid {
namespace {

using test::allClose;
using test::GuardedBuffer;
using test::toFloats;

// (rows, cols): single elements, odd widths, lengths around the 16-lane vectors and the
// 64-row gradient blocks. Above the OpenMP threshold (2^16 elements; CTest runs this at 1 and 2
// threads): 300 x 255 splits the rows (forward) and 5 gradient blocks (backward) over the
// threads; 40 x 1700 splits the rows but has one gradient block, and 1 x 65600 one row, so one
// thread gets no work.
const std::vector<std::pair<int64_t, int64_t>> kShapes = {
    {1, 1},    {1, 3},    {3, 17},   {17, 64},   {5, 127},   {64, 255},
    {65, 256}, {7, 1000}, {130, 33}, {300, 255}, {40, 1700}, {1, 65600}};

// Inputs of one test case: x in T (with a few rows shifted far from zero to exercise the
// two-pass variance), fp32 affine parameters, and the fp32 view of x the reference reads.
template <typename T>
struct LayerNormCase {
  int64_t rows, cols;
  GuardedBuffer<T> x;
  std::vector<float> x_f32, weight, bias;

  LayerNormCase(int64_t r, int64_t c, uint32_t seed)
      : rows(r), cols(c), x(static_cast<size_t>(r * c)), weight(c), bias(c) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-2.0f, 2.0f);
    for (int64_t n = 0; n < rows; ++n) {
      const float shift = n % 4 == 3 ? 50.0f : 0.0f;
      for (int64_t k = 0; k < cols; ++k) x[n * cols + k] = fromFloat<T>(u(rng) + shift);
    }
    x_f32 = toFloats(x.data(), x.size());
    test::fillUniform(weight.data(), weight.size(), rng, 0.5f, 1.5f);
    test::fillUniform(bias.data(), bias.size(), rng, -0.5f, 0.5f);
  }
};

template <typename T>
class LayerNormTyped : public ::testing::Test {};
using StorageTypes = ::testing::Types<float, bf16, f16>;
TYPED_TEST_SUITE(LayerNormTyped, StorageTypes);

TYPED_TEST(LayerNormTyped, ForwardMatchesReference) {
  using T = TypeParam;
  for (const auto& [rows, cols] : kShapes) {
    SCOPED_TRACE(testing::Message() << rows << "x" << cols);
    LayerNormCase<T> c(rows, cols, static_cast<uint32_t>(rows * 1000 + cols));
    const size_t n = static_cast<size_t>(rows * cols);
    GuardedBuffer<T> out(n);
    GuardedBuffer<float> mean(rows), rstd(rows);
    cpu::layerNormForward(out.data(), mean.data(), rstd.data(), c.x.data(), c.weight.data(),
                          c.bias.data(), rows, cols);
    std::vector<float> ref_out(n), ref_mean(rows), ref_rstd(rows);
    cpu::ref::layerNormForward(ref_out.data(), ref_mean.data(), ref_rstd.data(), c.x_f32.data(),
                               c.weight.data(), c.bias.data(), rows, cols);
    // Outputs are O(1): atol covers cancellation in w * xhat + b near zero.
    EXPECT_TRUE(allClose(toFloats(out.data(), n).data(), ref_out.data(), n,
                         {1e-5, test::storageRtol<T>()}));
    // Statistics are fp32 from the same (already rounded) inputs: fp32 tolerance.
    EXPECT_TRUE(allClose(mean.data(), ref_mean.data(), rows, {1e-5, 1e-5}));
    EXPECT_TRUE(allClose(rstd.data(), ref_rstd.data(), rows, {0.0, 1e-5}));
    EXPECT_TRUE(out.guardIntact());
    EXPECT_TRUE(mean.guardIntact());
    EXPECT_TRUE(rstd.guardIntact());

    // mean/rstd are optional.
    GuardedBuffer<T> out2(n);
    cpu::layerNormForward(out2.data(), static_cast<float*>(nullptr), static_cast<float*>(nullptr),
                          c.x.data(), c.weight.data(), c.bias.data(), rows, cols);
    EXPECT_TRUE(test::sameBits(out.data(), out2.data(), n));
  }
}

TYPED_TEST(LayerNormTyped, BackwardMatchesReference) {
  using T = TypeParam;
  for (const auto& [rows, cols] : kShapes) {
    for (bool accumulate : {false, true}) {
      SCOPED_TRACE(testing::Message() << rows << "x" << cols << " accumulate " << accumulate);
      LayerNormCase<T> c(rows, cols, static_cast<uint32_t>(rows * 7 + cols));
      const size_t n = static_cast<size_t>(rows * cols);
      std::mt19937 rng(static_cast<uint32_t>(rows + 31 * cols));
      // Saved statistics from the reference, shared by both backward passes.
      std::vector<float> ref_out(n), mean(rows), rstd(rows);
      cpu::ref::layerNormForward(ref_out.data(), mean.data(), rstd.data(), c.x_f32.data(),
                                 c.weight.data(), c.bias.data(), rows, cols);
      GuardedBuffer<T> dout(n), dx(n);
      test::fillUniform(dout.data(), n, rng, -1.0f, 1.0f);
      test::fillUniform(dx.data(), n, rng, -1.0f, 1.0f);  // overwritten unless accumulate
      GuardedBuffer<float> dweight(cols), dbias(cols);
      test::fillUniform(dweight.data(), cols, rng, -1.0f, 1.0f);  // accumulated into
      test::fillUniform(dbias.data(), cols, rng, -1.0f, 1.0f);
      std::vector<float> ref_dx = toFloats(dx.data(), n);
      std::vector<float> ref_dw(dweight.data(), dweight.data() + cols);
      std::vector<float> ref_db(dbias.data(), dbias.data() + cols);
      const std::vector<float> dout_f32 = toFloats(dout.data(), n);

      cpu::layerNormBackward(dx.data(), dweight.data(), dbias.data(), dout.data(), c.x.data(),
                             c.weight.data(), mean.data(), rstd.data(), rows, cols, accumulate);
      cpu::ref::layerNormBackward(ref_dx.data(), ref_dw.data(), ref_db.data(), dout_f32.data(),
                                  c.x_f32.data(), c.weight.data(), mean.data(), rstd.data(), rows,
                                  cols, accumulate);
      // dx terms are O(1); the row means inside are fp32 sums over cols (error ~1e-6 at 1000).
      EXPECT_TRUE(allClose(toFloats(dx.data(), n).data(), ref_dx.data(), n,
                           {2e-5, test::storageRtol<T>()}));
      // Parameter gradients are fp32 sums over rows of O(1) terms from identical inputs:
      // fp32 tolerance whatever T is, atol growing with the number of rows summed.
      const test::Tolerance sum_tol{2e-6 * static_cast<double>(rows), 1e-5};
      EXPECT_TRUE(allClose(dweight.data(), ref_dw.data(), cols, sum_tol));
      EXPECT_TRUE(allClose(dbias.data(), ref_db.data(), cols, sum_tol));
      EXPECT_TRUE(dx.guardIntact());
      EXPECT_TRUE(dweight.guardIntact());
      EXPECT_TRUE(dbias.guardIntact());
    }
  }
}

// Fixed-size row blocks make parameter gradients independent of the thread count.
TYPED_TEST(LayerNormTyped, ThreadCountDoesNotChangeBits) {
  using T = TypeParam;
  const int64_t rows = 1000, cols = 255;  // 255000 elements: above the OpenMP threshold
  LayerNormCase<T> c(rows, cols, 77);
  const size_t n = static_cast<size_t>(rows * cols);
  std::mt19937 rng(5);
  GuardedBuffer<T> dout(n);
  test::fillUniform(dout.data(), n, rng, -1.0f, 1.0f);
  std::vector<T> out[2] = {std::vector<T>(n), std::vector<T>(n)};
  std::vector<T> dx[2] = {std::vector<T>(n), std::vector<T>(n)};
  std::vector<float> mean[2], rstd[2], dw[2], db[2];
  for (int t = 0; t < 2; ++t) {
    test::ScopedThreads threads(t + 1);
    mean[t].resize(rows);
    rstd[t].resize(rows);
    dw[t].assign(cols, 0.25f);
    db[t].assign(cols, -0.25f);
    cpu::layerNormForward(out[t].data(), mean[t].data(), rstd[t].data(), c.x.data(),
                          c.weight.data(), c.bias.data(), rows, cols);
    cpu::layerNormBackward(dx[t].data(), dw[t].data(), db[t].data(), dout.data(), c.x.data(),
                           c.weight.data(), mean[t].data(), rstd[t].data(), rows, cols, false);
  }
  EXPECT_TRUE(test::sameBits(out[0].data(), out[1].data(), n));
  EXPECT_TRUE(test::sameBits(mean[0].data(), mean[1].data(), rows));
  EXPECT_TRUE(test::sameBits(dx[0].data(), dx[1].data(), n));
  EXPECT_TRUE(test::sameBits(dw[0].data(), dw[1].data(), cols));
  EXPECT_TRUE(test::sameBits(db[0].data(), db[1].data(), cols));
}

// Hand-checkable forward: row (1, 2, 3, 4) has mean 2.5 and biased variance 1.25.
TEST(LayerNormReference, KnownRow) {
  const float x[4] = {1, 2, 3, 4};
  const float w[4] = {1, 1, 2, 1};
  const float b[4] = {0, 0, 0, 1};
  float out[4], mean, rstd;
  cpu::ref::layerNormForward(out, &mean, &rstd, x, w, b, 1, 4);
  const double s = 1.0 / std::sqrt(1.25 + 1e-5);
  EXPECT_FLOAT_EQ(mean, 2.5f);
  EXPECT_FLOAT_EQ(rstd, static_cast<float>(s));
  EXPECT_FLOAT_EQ(out[0], static_cast<float>(-1.5 * s));
  EXPECT_FLOAT_EQ(out[1], static_cast<float>(-0.5 * s));
  EXPECT_FLOAT_EQ(out[2], static_cast<float>(2 * 0.5 * s));
  EXPECT_FLOAT_EQ(out[3], static_cast<float>(1.5 * s + 1));
}

// The reference backward against central differences of L = sum(out * dout), in double.
TEST(LayerNormReference, BackwardMatchesFiniteDifferences) {
  const int64_t rows = 3, cols = 5;
  const size_t n = rows * cols;
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<double> x(n), dout(n), w(cols), b(cols);
  for (auto& v : x) v = 2 * u(rng);
  for (auto& v : dout) v = u(rng);
  for (auto& v : w) v = 1 + 0.5 * u(rng);
  for (auto& v : b) v = u(rng);

  auto loss = [&](const std::vector<double>& xs, const std::vector<double>& ws,
                  const std::vector<double>& bs) {
    std::vector<double> out(n);
    cpu::ref::layerNormForward(out.data(), static_cast<double*>(nullptr),
                               static_cast<double*>(nullptr), xs.data(), ws.data(), bs.data(), rows,
                               cols);
    double l = 0;
    for (size_t i = 0; i < n; ++i) l += out[i] * dout[i];
    return l;
  };

  std::vector<double> out(n), mean(rows), rstd(rows);
  cpu::ref::layerNormForward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(),
                             rows, cols);
  // dx starts at 0.5 and is accumulated into; dweight/dbias start at 0.25 (accumulated).
  std::vector<double> dx(n, 0.5), dw(cols, 0.25), db(cols, 0.25);
  cpu::ref::layerNormBackward(dx.data(), dw.data(), db.data(), dout.data(), x.data(), w.data(),
                              mean.data(), rstd.data(), rows, cols, true);

  const double h = 1e-6;  // truncation ~h^2, rounding ~1e-16 / h: both < 1e-9
  const double tol = 1e-7;
  for (size_t i = 0; i < n; ++i) {
    auto xp = x, xm = x;
    xp[i] += h;
    xm[i] -= h;
    EXPECT_NEAR(dx[i] - 0.5, (loss(xp, w, b) - loss(xm, w, b)) / (2 * h), tol) << "dx " << i;
  }
  for (int64_t c = 0; c < cols; ++c) {
    auto wp = w, wm = w, bp = b, bm = b;
    wp[c] += h;
    wm[c] -= h;
    bp[c] += h;
    bm[c] -= h;
    EXPECT_NEAR(dw[c] - 0.25, (loss(x, wp, b) - loss(x, wm, b)) / (2 * h), tol) << "dw " << c;
    EXPECT_NEAR(db[c] - 0.25, (loss(x, w, bp) - loss(x, w, bm)) / (2 * h), tol) << "db " << c;
  }

  // Without accumulate, dx is overwritten.
  std::vector<double> dx2(n, 123.0), dw2(cols, 0.0), db2(cols, 0.0);
  cpu::ref::layerNormBackward(dx2.data(), dw2.data(), db2.data(), dout.data(), x.data(), w.data(),
                              mean.data(), rstd.data(), rows, cols, false);
  for (size_t i = 0; i < n; ++i) EXPECT_NEAR(dx2[i], dx[i] - 0.5, 1e-12);
}

}  // namespace
}  // namespace kdgrid
