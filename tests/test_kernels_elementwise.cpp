// Elementwise helpers: conversions bit-exact against src/core/dtype.h (random bit patterns,
// NaN, inf, denormals, rounding ties, every 16-bit pattern), residual add and scale
// (bit-exact against the reference rounded by dtype.h), bias add (tolerance rule and bit-exact),
// zero fill, bias-gradient sums.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/reference/elementwise.h"
#include "tests/kernel_test_util.h"

namespace kdgrid {
namespace {

using test::allClose;
using test::GuardedBuffer;
using test::toFloats;

// Lengths around the 16-lane vectors (masked tails 1..15) and the 1024-element chunks,
// and one above the OpenMP threshold.
const std::vector<int64_t> kLengths = {1, 3, 15, 16, 17, 64, 127, 255, 1000, 1025, 70001};

uint32_t bitsOf(float f) {
  return std::bit_cast<uint32_t>(f);
}
float floatOf(uint32_t u) {
  return std::bit_cast<float>(u);
}

// fp32 inputs that stress rounding: random bit patterns (all exponents: NaN, inf,
// denormals, both signs), exact halfway cases between neighbouring bf16 and fp16 values
// (ties to even, in the normal and the fp16-subnormal ranges), values one ulp either side
// of a tie, fp16's overflow threshold, and signed zeros.
std::vector<float> hardFloats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<float> out;
  out.reserve(n);
  const float specials[] = {0.0f,
                            -0.0f,
                            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(),
                            floatOf(0x7fc00000u),
                            floatOf(0x7f800001u),
                            floatOf(0xffbfffffu),
                            floatOf(0x00000001u),
                            floatOf(0x807fffffu),
                            floatOf(0x00008000u),
                            floatOf(0x00018000u),
                            floatOf(0x007f8000u),
                            65504.0f,
                            65519.996f,
                            65520.0f,
                            -65520.0f,
                            6.1035156e-05f,
                            5.9604645e-08f,
                            2.9802322e-08f,
                            floatOf(0x7f7fffffu),
                            floatOf(0x7f7f8000u),
                            floatOf(0x3f808000u),
                            floatOf(0x3f818000u)};
  for (float f : specials) out.push_back(f);
  while (out.size() < n) {
    const uint32_t r = rng();
    switch (r % 6) {
      case 0:  // any bit pattern
        out.push_back(floatOf(rng()));
        break;
      case 1: {  // bf16 tie: low 16 bits exactly 0x8000, and one ulp either side
        const uint32_t hi = rng() & 0xffff0000u;
        const uint32_t delta = (r >> 3) % 3;  // 0: below, 1: tie, 2: above
        out.push_back(floatOf(hi | (0x7fffu + delta)));
        break;
      }
      case 2: {  // fp16 tie: midpoint of two neighbouring finite fp16 values (exact in fp32)
        _Float16 a;
        uint16_t bits = static_cast<uint16_t>(rng() & 0x7bfeu);  // finite, below 0x7bff
        bits |= static_cast<uint16_t>((r >> 8) & 0x8000u);
        std::memcpy(&a, &bits, 2);
        const uint16_t next_bits = static_cast<uint16_t>(bits + 1);
        _Float16 b;
        std::memcpy(&b, &next_bits, 2);
        const float mid = 0.5f * (static_cast<float>(a) + static_cast<float>(b));
        const uint32_t delta = (r >> 3) % 3;
        out.push_back(floatOf(bitsOf(mid) + delta - 1));
        break;
      }
      case 3:  // fp32 denormals of either sign
        out.push_back(floatOf((rng() & 0x807fffffu)));
        break;
      case 4:  // ordinary values across fp16's range, with underflow and overflow
        out.push_back(std::ldexp(std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng),
                                 static_cast<int>(rng() % 50) - 30));
        break;
      default:  // NaN with random payload and sign
        out.push_back(floatOf(0x7f800000u | (rng() & 0x807fffffu) | 1u));
        break;
    }
  }
  out.resize(n);
  return out;
}

// fp32 -> bf16 / fp16 must match dtype.h bit for bit, at every length (tails) and on the
// OpenMP path.
template <typename T>
void checkFromFloat() {
  const std::vector<float> all = hardFloats(300000, 42);
  for (int64_t n : kLengths) {
    SCOPED_TRACE(testing::Message() << "n " << n);
    // Offsets: different mixes of special values land in the vector tails.
    for (size_t offset : {size_t{0}, size_t{7}, size_t{100000}}) {
      GuardedBuffer<T> fast(n);
      cpu::convertBuffer(fast.data(), all.data() + offset, n);
      size_t mismatches = 0;
      for (int64_t i = 0; i < n; ++i) {
        const T want(all[offset + i]);
        if (fast[i].bits != want.bits) {
          if (mismatches < 5) {
            ADD_FAILURE() << "fp32 bits 0x" << std::hex << bitsOf(all[offset + i]) << " -> 0x"
                          << fast[i].bits << ", dtype.h gives 0x" << want.bits;
          }
          ++mismatches;
        }
      }
      EXPECT_EQ(mismatches, 0u);
      EXPECT_TRUE(fast.guardIntact());
    }
  }
  // Long buffer: parallel chunks.
  GuardedBuffer<T> fast(all.size());
  cpu::convertBuffer(fast.data(), all.data(), static_cast<int64_t>(all.size()));
  std::vector<T> ref(all.size());
  cpu::ref::convertBuffer(ref.data(), all.data(), static_cast<int64_t>(all.size()));
  EXPECT_TRUE(test::sameBits(fast.data(), ref.data(), all.size()));
  EXPECT_TRUE(fast.guardIntact());
}

TEST(Convert, Fp32ToBf16MatchesDtypeBitExactly) {
  checkFromFloat<bf16>();
}
TEST(Convert, Fp32ToFp16MatchesDtypeBitExactly) {
  checkFromFloat<f16>();
}

// Every 16-bit pattern, widened to fp32 and converted to the other 16-bit type.
template <typename T>
void checkAllPatterns() {
  const int64_t n = 65536;
  std::vector<T> src(n);
  for (int64_t i = 0; i < n; ++i) src[i].bits = static_cast<uint16_t>(i);
  GuardedBuffer<float> wide(n);
  cpu::convertBuffer(wide.data(), src.data(), n);
  std::vector<float> ref_wide(n);
  cpu::ref::convertBuffer(ref_wide.data(), src.data(), n);
  EXPECT_TRUE(test::sameBits(wide.data(), ref_wide.data(), n));
  EXPECT_TRUE(wide.guardIntact());
  // Finite values survive the round trip unchanged.
  GuardedBuffer<T> back(n);
  cpu::convertBuffer(back.data(), wide.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    if (std::isfinite(wide[i])) {
      EXPECT_EQ(back[i].bits, src[i].bits) << i;
    }
  }
  // To the other 16-bit type (through fp32), against the reference.
  using Other = std::conditional_t<std::is_same_v<T, bf16>, f16, bf16>;
  GuardedBuffer<Other> other(n);
  std::vector<Other> ref_other(n);
  cpu::convertBuffer(other.data(), src.data(), n);
  cpu::ref::convertBuffer(ref_other.data(), src.data(), n);
  EXPECT_TRUE(test::sameBits(other.data(), ref_other.data(), n));
  EXPECT_TRUE(other.guardIntact());
  // Same type: a bit copy (NaN payloads included).
  GuardedBuffer<T> copy(n);
  cpu::convertBuffer(copy.data(), src.data(), n);
  EXPECT_TRUE(test::sameBits(copy.data(), src.data(), n));
  EXPECT_TRUE(copy.guardIntact());
}

TEST(Convert, EveryBf16Pattern) {
  checkAllPatterns<bf16>();
}
TEST(Convert, EveryFp16Pattern) {
  checkAllPatterns<f16>();
}

// A few conversions worked out by hand, so that "matches dtype.h" also means "right".
TEST(Convert, KnownRoundings) {
  const float in[] = {1.0f,
                      floatOf(0x3f808000u),
                      floatOf(0x3f818000u),
                      floatOf(0x3f808001u),
                      floatOf(0x00018000u),
                      65520.0f,
                      65519.0f};
  bf16 b[7];
  f16 h[7];
  cpu::convertBuffer(b, in, 7);
  cpu::convertBuffer(h, in, 7);
  EXPECT_EQ(b[0].bits, 0x3f80);  // exact
  EXPECT_EQ(b[1].bits, 0x3f80);  // tie, even below
  EXPECT_EQ(b[2].bits, 0x3f82);  // tie, even above
  EXPECT_EQ(b[3].bits, 0x3f81);  // just above the tie
  EXPECT_EQ(b[4].bits, 0x0002);  // fp32 denormal: rounded, not flushed (tie to even)
  EXPECT_EQ(h[5].bits, 0x7c00);  // 65520 is the fp16 overflow threshold -> inf
  EXPECT_EQ(h[6].bits, 0x7bff);  // 65519 -> 65504
}

template <typename T>
class ElementwiseTyped : public ::testing::Test {};
using StorageTypes = ::testing::Types<float, bf16, f16>;
TYPED_TEST_SUITE(ElementwiseTyped, StorageTypes);

// The fast add computes in fp32 and rounds once, like the reference followed by dtype.h:
// the results must agree bit for bit. Also in place (out == a, out == b).
TYPED_TEST(ElementwiseTyped, ResidualAddExact) {
  using T = TypeParam;
  for (int64_t n : kLengths) {
    SCOPED_TRACE(testing::Message() << "n " << n);
    std::mt19937 rng(static_cast<uint32_t>(n));
    GuardedBuffer<T> a(n), b(n), out(n);
    test::fillUniform(a.data(), n, rng, -10.0f, 10.0f);
    test::fillUniform(b.data(), n, rng, -10.0f, 10.0f);
    const auto af = toFloats(a.data(), n), bf = toFloats(b.data(), n);
    std::vector<float> ref(n);
    cpu::ref::residualAdd(ref.data(), af.data(), bf.data(), n);
    std::vector<T> want(n);
    cpu::ref::convertBuffer(want.data(), ref.data(), n);
    cpu::residualAdd(out.data(), a.data(), b.data(), n);
    EXPECT_TRUE(test::sameBits(out.data(), want.data(), n));
    EXPECT_TRUE(out.guardIntact());
    GuardedBuffer<T> a2 = a, b2 = b;
    cpu::residualAdd(a2.data(), a2.data(), b.data(), n);
    cpu::residualAdd(b2.data(), a.data(), b2.data(), n);
    EXPECT_TRUE(test::sameBits(a2.data(), want.data(), n));
    EXPECT_TRUE(test::sameBits(b2.data(), want.data(), n));
    EXPECT_TRUE(a2.guardIntact());
    EXPECT_TRUE(b2.guardIntact());
  }
}

// Bias add against the reference with the tolerance rule, then bit for bit against the
// reference rounded by dtype.h (one fp32 add, one rounding: fp32 training must not change).
// Shapes: tails of the 16-lane vectors and of the 1024-column chunks, one long row (split by
// column chunks), many short rows, and sizes below and above the OpenMP threshold.
TYPED_TEST(ElementwiseTyped, AddBias) {
  using T = TypeParam;
  const std::pair<int64_t, int64_t> shapes[] = {{1, 1},    {1, 17},   {3, 15},   {5, 1025},
                                                {7, 2049}, {130, 255}, {1, 70001}, {257, 300},
                                                {100, 769}};
  // rtol per storage type (kernel_test_util.h); atol 6e-8 covers results that land among the
  // fp16 subnormals, where the relative rule alone is too tight.
  const test::Tolerance tol{6e-8, test::storageRtol<T>()};
  for (const auto& [rows, cols] : shapes) {
    SCOPED_TRACE(testing::Message() << rows << "x" << cols);
    std::mt19937 rng(static_cast<uint32_t>(rows * 131 + cols));
    GuardedBuffer<T> y(rows * cols);
    test::fillUniform(y.data(), y.size(), rng, -10.0f, 10.0f);
    GuardedBuffer<float> b(cols);
    test::fillUniform(b.data(), cols, rng, -3.0f, 3.0f);
    std::vector<float> ref = toFloats(y.data(), y.size());
    cpu::ref::addBias(ref.data(), b.data(), rows, cols);
    cpu::addBias(y.data(), b.data(), rows, cols);
    EXPECT_TRUE(allClose(y.data(), ref.data(), y.size(), tol));
    std::vector<T> want(y.size());
    cpu::ref::convertBuffer(want.data(), ref.data(), static_cast<int64_t>(y.size()));
    EXPECT_TRUE(test::sameBits(y.data(), want.data(), y.size()));
    EXPECT_TRUE(y.guardIntact());
    EXPECT_TRUE(b.guardIntact());
  }
}

TYPED_TEST(ElementwiseTyped, ScaleInPlaceExact) {
  using T = TypeParam;
  for (int64_t n : kLengths) {
    SCOPED_TRACE(testing::Message() << "n " << n);
    std::mt19937 rng(static_cast<uint32_t>(n) + 1);
    GuardedBuffer<T> x(n);
    test::fillUniform(x.data(), n, rng, -10.0f, 10.0f);
    std::vector<float> ref = toFloats(x.data(), n);
    cpu::ref::scaleInPlace(ref.data(), 0.3f, n);
    std::vector<T> want(n);
    cpu::ref::convertBuffer(want.data(), ref.data(), n);
    cpu::scaleInPlace(x.data(), 0.3f, n);
    EXPECT_TRUE(test::sameBits(x.data(), want.data(), n));
    EXPECT_TRUE(x.guardIntact());
  }
}

TYPED_TEST(ElementwiseTyped, ZeroFill) {
  using T = TypeParam;
  for (int64_t n : kLengths) {
    GuardedBuffer<T> x(n);
    std::mt19937 rng(3);
    test::fillUniform(x.data(), n, rng, 1.0f, 2.0f);
    cpu::zeroFill(x.data(), n);
    std::vector<T> zeros(n);  // value-initialised: all-zero bits
    EXPECT_TRUE(test::sameBits(x.data(), zeros.data(), n)) << n;
    EXPECT_TRUE(x.guardIntact()) << n;
  }
}

TYPED_TEST(ElementwiseTyped, BiasGradColumnSum) {
  using T = TypeParam;
  // Column counts cross the 1024-column inner chunks; row counts cross the 64-row blocks.
  // Above the OpenMP threshold: 300 x 2100 splits 5 row blocks over the threads; 64 x 1100 is
  // one block (one thread gets no work).
  const std::pair<int64_t, int64_t> shapes[] = {{1, 1},     {3, 17},    {64, 64},
                                                {65, 127},  {7, 1025},  {130, 255},
                                                {300, 2100}, {64, 1100}};
  for (const auto& [rows, cols] : shapes) {
    SCOPED_TRACE(testing::Message() << rows << "x" << cols);
    std::mt19937 rng(static_cast<uint32_t>(rows * cols));
    GuardedBuffer<T> dy(rows * cols);
    test::fillUniform(dy.data(), dy.size(), rng, -1.0f, 1.0f);
    GuardedBuffer<float> db(cols);
    test::fillUniform(db.data(), cols, rng, -1.0f, 1.0f);  // accumulated into
    std::vector<float> ref(db.data(), db.data() + cols);
    const auto dyf = toFloats(dy.data(), dy.size());
    cpu::ref::biasGradColumnSum(ref.data(), dyf.data(), rows, cols);
    cpu::biasGradColumnSum(db.data(), dy.data(), rows, cols);
    // fp32 sums of identical fp32 addends vs double: atol grows with the rows summed.
    EXPECT_TRUE(allClose(db.data(), ref.data(), cols, {1e-6 * static_cast<double>(rows), 1e-5}));
    EXPECT_TRUE(db.guardIntact());
  }
  // Thread-count independence (fixed row blocks).
  const int64_t rows = 1000, cols = 300;
  std::mt19937 rng(6);
  std::vector<T> dy(rows * cols);
  test::fillUniform(dy.data(), dy.size(), rng, -1.0f, 1.0f);
  std::vector<float> db1(cols, 0.5f), db2(cols, 0.5f);
  {
    test::ScopedThreads threads(1);
    cpu::biasGradColumnSum(db1.data(), dy.data(), rows, cols);
  }
  {
    test::ScopedThreads threads(2);
    cpu::biasGradColumnSum(db2.data(), dy.data(), rows, cols);
  }
  EXPECT_TRUE(test::sameBits(db1.data(), db2.data(), cols));
}

}  // namespace
}  // namespace kdgrid
