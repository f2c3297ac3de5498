// Vocabulary-parallel cross-entropy: the vocabulary split over tp = 1..4 simulated ranks,
// partial statistics combined by hand (MAX, then SUM), against the full-vocabulary double
// reference; padding columns and ignored rows; the reference backward against finite
// differences.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/cross_entropy.h"
#include "kernels/cpu/reference/cross_entropy.h"
#include "src/core/check.h"
#include "tests/kernel_test_util.h"

namespace kdgrid {
namespace {

using cpu::kXentIgnore;
using cpu::VocabSlice;
using test::allClose;
using test::GuardedBuffer;
using test::Tolerance;

// fp32 throughout: the stats, exp (~1 ulp) and one division give a few 1e-7 relative error in
// each probability; 1e-5 leaves a wide margin. The loss log S + M - Z is formed in double
// from fp32 parts of size up to |M| + log V, hence atol relative to that size.
constexpr double kRtol = 1e-5;
// A padding logit large enough to dominate any row if it were (wrongly) included.
constexpr float kPadLogit = 1e4f;

struct Problem {
  int64_t rows, vocab;
  std::vector<float> logits;  // [rows, vocab], no padding
  std::vector<uint32_t> targets;
};

Problem makeProblem(int64_t rows, int64_t vocab, uint32_t seed, float stddev = 3.0f,
                    float mean = 0.0f) {
  Problem p{rows, vocab, test::normalValues(rows * vocab, seed, stddev, mean), {}};
  std::mt19937 rng(seed + 17);
  for (int64_t r = 0; r < rows; ++r) {
    // Every fourth row ignored; targets include the first and last ids.
    if (r % 4 == 3)
      p.targets.push_back(kXentIgnore);
    else if (r % 7 == 0)
      p.targets.push_back(0);
    else if (r % 7 == 1)
      p.targets.push_back(uint32_t(vocab - 1));
    else
      p.targets.push_back(uint32_t(rng() % vocab));
  }
  return p;
}

// Result of the simulated tensor-parallel run: loss [rows] and the gradient reassembled to
// [rows, vocab]; also checks guards and that padding gradients are exactly 0.
struct SplitResult {
  std::vector<float> loss, grad;
};

SplitResult runSplit(const Problem& p, int tp, int64_t v_local, float row_scale) {
  const int64_t rows = p.rows;
  std::vector<GuardedBuffer<float>> logits, lmax, lsum, tlogit;
  std::vector<VocabSlice> slices;
  for (int rank = 0; rank < tp; ++rank) {
    const VocabSlice s{rank * v_local, v_local, p.vocab};
    slices.push_back(s);
    logits.emplace_back(rows * v_local);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < v_local; ++c) {
        const int64_t id = s.start + c;
        logits[rank][r * v_local + c] = id < p.vocab ? p.logits[r * p.vocab + id] : kPadLogit;
      }
    lmax.emplace_back(rows);
    lsum.emplace_back(rows);
    tlogit.emplace_back(rows);
    cpu::xentRowStats(lmax[rank].data(), lsum[rank].data(), tlogit[rank].data(),
                      logits[rank].data(), p.targets.data(), rows, s);
  }
  // The caller's all-reduces, by hand: MAX of the maxima, then SUM of the rescaled sums and of
  // the target logits.
  std::vector<float> gmax(rows, -std::numeric_limits<float>::infinity()), gsum(rows, 0.0f),
      gtarget(rows, 0.0f);
  for (int rank = 0; rank < tp; ++rank)
    for (int64_t r = 0; r < rows; ++r) gmax[r] = std::max(gmax[r], lmax[rank][r]);
  for (int rank = 0; rank < tp; ++rank) {
    cpu::xentRescaleSums(lsum[rank].data(), lmax[rank].data(), gmax.data(), rows);
    for (int64_t r = 0; r < rows; ++r) {
      gsum[r] += lsum[rank][r];
      gtarget[r] += tlogit[rank][r];
    }
  }
  SplitResult out;
  GuardedBuffer<float> loss(rows);
  cpu::xentLoss(loss.data(), gmax.data(), gsum.data(), gtarget.data(), p.targets.data(), rows);
  EXPECT_TRUE(loss.guardIntact());
  out.loss = loss.values();
  out.grad.assign(rows * p.vocab, NAN);
  for (int rank = 0; rank < tp; ++rank) {
    cpu::xentBackwardInPlace(logits[rank].data(), gmax.data(), gsum.data(), p.targets.data(), rows,
                             slices[rank], row_scale);
    EXPECT_TRUE(logits[rank].guardIntact() && lmax[rank].guardIntact() &&
                lsum[rank].guardIntact() && tlogit[rank].guardIntact())
        << "rank " << rank;
    test::gatherVocabSlice(out.grad, logits[rank].data(), rows, p.vocab, slices[rank].start,
                           v_local);
  }
  return out;
}

void expectSplitMatchesReference(const Problem& p, int tp, int64_t v_local) {
  SCOPED_TRACE("rows " + std::to_string(p.rows) + " vocab " + std::to_string(p.vocab) + " tp " +
               std::to_string(tp) + " v_local " + std::to_string(v_local));
  int64_t counted = 0;
  for (uint32_t t : p.targets) counted += t != kXentIgnore;
  const float row_scale = 1.0f / float(std::max<int64_t>(1, counted));
  const SplitResult got = runSplit(p, tp, v_local, row_scale);

  std::vector<float> loss(p.rows), grad(p.rows * p.vocab);
  cpu::ref::crossEntropyForward(loss.data(), p.logits.data(), p.targets.data(), p.rows, p.vocab);
  cpu::ref::crossEntropyBackward(grad.data(), p.logits.data(), p.targets.data(), p.rows, p.vocab,
                                 row_scale);
  const double size = test::maxAbs(p.logits) + std::log(double(p.vocab)) + 1;
  EXPECT_TRUE(allClose(got.loss.data(), loss.data(), loss.size(), Tolerance{kRtol * size, kRtol}))
      << "loss";
  EXPECT_TRUE(
      allClose(got.grad.data(), grad.data(), grad.size(), Tolerance{kRtol * row_scale, kRtol}))
      << "grad";
  for (int64_t r = 0; r < p.rows; ++r) {
    if (p.targets[r] != kXentIgnore) continue;
    EXPECT_EQ(got.loss[r], 0.0f);
    for (int64_t c = 0; c < p.vocab; ++c) ASSERT_EQ(got.grad[r * p.vocab + c], 0.0f);
  }
}

TEST(Xent, SplitVocabularyMatchesReference) {
  uint32_t seed = 1;
  for (int64_t vocab : {1, 2, 17, 100, 1000, 4099})
    for (int64_t rows : {1, 3, 37})
      for (int tp : {1, 2, 3, 4}) {
        const Problem p = makeProblem(rows, vocab, seed++);
        const int64_t v_local = (vocab + tp - 1) / tp;  // vocabulary padded to a multiple of tp
        expectSplitMatchesReference(p, tp, v_local);
        if (HasFailure()) return;
      }
}

// Threads (CTest runs this at 1 and 2): rows x vocabulary above the OpenMP threshold (2^16)
// opens a parallel region over 16-row chunks. 37 rows (above) are 3 chunks, split over the
// threads; these 5 rows are one chunk, so one thread gets no work.
TEST(Xent, FewRowsAboveTheThreadThreshold) {
  const Problem p = makeProblem(5, 20011, 90);
  for (int tp : {1, 2}) expectSplitMatchesReference(p, tp, (20011 + tp - 1) / tp);
}

// More padding than a multiple of tp: whole ranks hold only padding ids.
TEST(Xent, RanksHoldingOnlyPadding) {
  const Problem p = makeProblem(13, 5, 50);
  expectSplitMatchesReference(p, 4, 4);   // ids 0..15: ranks 2 and 3 are all padding
  expectSplitMatchesReference(p, 3, 16);  // rank 0 holds everything
}

// Logits around 1000 with spread 30: exp without the max subtraction would overflow.
TEST(Xent, LargeLogitsAreStable) {
  const Problem p = makeProblem(19, 777, 60, 30.0f, 1000.0f);
  for (int tp : {1, 3}) expectSplitMatchesReference(p, tp, (777 + tp - 1) / tp);
}

TEST(Xent, TargetBeyondVocabularyIsAnError) {
  const float logits[4] = {0, 1, 2, 3};
  const uint32_t targets[1] = {3};  // id 3 is padding when the vocabulary has 3 ids
  float m, s, z;
  EXPECT_THROW(cpu::xentRowStats(&m, &s, &z, logits, targets, 1, VocabSlice{0, 4, 3}), Error);
}

// Rows are independent and each computed in a fixed order: thread count does not matter.
TEST(Xent, ThreadCountDoesNotChangeResults) {
  const Problem p = makeProblem(300, 1111, 70);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const SplitResult one = runSplit(p, 2, 556, 0.01f);
  omp_set_num_threads(3);
  const SplitResult three = runSplit(p, 2, 556, 0.01f);
  omp_set_num_threads(saved);
  EXPECT_EQ(one.loss, three.loss);
  EXPECT_EQ(0, std::memcmp(one.grad.data(), three.grad.data(), one.grad.size() * sizeof(float)));
}

// The reference backward against central differences of L = row_scale * sum_r loss_r.
TEST(XentReference, BackwardMatchesFiniteDifferences) {
  const int64_t rows = 4, vocab = 7;
  const double row_scale = 0.37;
  std::vector<double> x;
  for (float v : test::normalValues(rows * vocab, 80, 2.0f)) x.push_back(v);
  const std::vector<uint32_t> targets = {3, 0, kXentIgnore, 6};
  auto loss = [&](const std::vector<double>& v) {
    std::vector<double> l(rows);
    cpu::ref::crossEntropyForward(l.data(), v.data(), targets.data(), rows, vocab);
    double s = 0;
    for (double e : l) s += e * row_scale;
    return s;
  };
  std::vector<double> grad(rows * vocab);
  cpu::ref::crossEntropyBackward(grad.data(), x.data(), targets.data(), rows, vocab, row_scale);
  const std::vector<double> fd = test::centralDifferences(loss, x);
  EXPECT_TRUE(allClose(grad.data(), fd.data(), fd.size(), Tolerance{1e-9, 1e-6}));
  EXPECT_GT(test::maxAbs(grad), 0.1);
}

// The reference's loss of uniform logits is log(vocab).
TEST(XentReference, UniformLogitsGiveLogVocab) {
  const std::vector<double> logits(3 * 10, 2.5);
  const std::vector<uint32_t> targets = {0, 9, 4};
  std::vector<double> loss(3);
  cpu::ref::crossEntropyForward(loss.data(), logits.data(), targets.data(), 3, 10);
  for (double l : loss) EXPECT_NEAR(l, std::log(10.0), 1e-14);
}

}  // namespace
}  // namespace kdgrid
