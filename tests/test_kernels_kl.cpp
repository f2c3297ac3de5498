// Vocabulary-parallel distillation divergences (kernels/cpu/kl.h): the vocabulary split over
// tp = 1..4 simulated ranks with the partial statistics combined by hand (MAX, then SUM),
// against the full-vocabulary double reference, for forward_kl, reverse_kl and jsd, dense and
// top-k, alone and with the cross-entropy gradient fused in; the references against finite
// differences; and the references against PyTorch (torch.nn.functional.kl_div) through
// tests/kl_torch_reference.py.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/cpu/cross_entropy.h"
#include "kernels/cpu/kl.h"
#include "kernels/cpu/reference/cross_entropy.h"
#include "kernels/cpu/reference/kl.h"
#include "src/core/check.h"
#include "tests/kernel_test_util.h"
#include "tests/test_util.h"

namespace kdgrid {
namespace {

using cpu::Divergence;
using cpu::kXentIgnore;
using cpu::VocabSlice;
using test::allClose;
using test::GuardedBuffer;
using test::Tolerance;

constexpr Divergence kAll[] = {Divergence::kForwardKl, Divergence::kReverseKl, Divergence::kJsd};

const char* name(Divergence d) {
  return d == Divergence::kForwardKl   ? "forward_kl"
         : d == Divergence::kReverseKl ? "reverse_kl"
                                       : "jsd";
}

// fp32 kernels against the double reference: the statistics, exps (~1 ulp) and fp32 sums give a
// few 1e-7 relative error in each probability and log-probability; the losses and
// log-probabilities are differences of terms of size |logit| / T + log V, hence an absolute
// allowance of kRtol times that size (as cross-entropy's test).
constexpr double kRtol = 1e-5;
// A padding logit large enough to dominate any row if it were (wrongly) included.
constexpr float kPadLogit = 1e4f;

struct Problem {
  int64_t rows, vocab;
  std::vector<float> student, teacher;  // [rows, vocab]
  std::vector<uint32_t> targets;        // [rows] for the fused cross-entropy
};

Problem makeProblem(int64_t rows, int64_t vocab, uint32_t seed, float stddev = 3.0f,
                    float mean = 0.0f) {
  Problem p{rows, vocab, test::normalValues(rows * vocab, seed, stddev, mean), {}, {}};
  // The teacher: correlated with the student (as after some training) plus noise.
  const std::vector<float> noise = test::normalValues(rows * vocab, seed + 1, stddev, 0.0f);
  for (int64_t i = 0; i < rows * vocab; ++i) p.teacher.push_back(0.6f * p.student[i] + noise[i]);
  std::mt19937 rng(seed + 2);
  for (int64_t r = 0; r < rows; ++r)
    p.targets.push_back(r % 5 == 4 ? kXentIgnore : uint32_t(rng() % vocab));
  return p;
}

double sizeOf(const Problem& p, double temperature) {
  return std::max(test::maxAbs(p.student), test::maxAbs(p.teacher)) / temperature +
         std::log(double(p.vocab)) + 1;
}

// One simulated tensor-parallel run, dense. `xent_scale` > 0 fuses the cross-entropy gradient.
struct SplitResult {
  std::vector<float> loss, grad;  // [rows], [rows, vocab] reassembled
};

SplitResult runSplit(const Problem& p, int tp, int64_t v_local, float temperature, Divergence d,
                     float row_scale, float xent_scale) {
  const int64_t rows = p.rows;
  std::vector<GuardedBuffer<float>> zs, zt, lmax, lsum, terms, xmax, xsum, xtarget;
  std::vector<VocabSlice> slices;
  for (int rank = 0; rank < tp; ++rank) {
    const VocabSlice s{rank * v_local, v_local, p.vocab};
    slices.push_back(s);
    zs.emplace_back(rows * v_local);
    zt.emplace_back(rows * v_local);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < v_local; ++c) {
        const int64_t id = s.start + c;
        zs[rank][r * v_local + c] = id < p.vocab ? p.student[r * p.vocab + id] : kPadLogit;
        zt[rank][r * v_local + c] = id < p.vocab ? p.teacher[r * p.vocab + id] : -kPadLogit;
      }
    lmax.emplace_back(cpu::kKlMaxes * rows);
    lsum.emplace_back(cpu::kKlSums * rows);
    terms.emplace_back(cpu::kJsdTerms * rows);
    xmax.emplace_back(rows);
    xsum.emplace_back(rows);
    xtarget.emplace_back(rows);
    cpu::klRowStats(lmax[rank].data(), lsum[rank].data(), zs[rank].data(), zt[rank].data(), rows, s,
                    temperature, d);
    cpu::xentRowStats(xmax[rank].data(), xsum[rank].data(), xtarget[rank].data(), zs[rank].data(),
                      p.targets.data(), rows, s);
  }
  // The caller's all-reduces by hand: MAX, rescale, SUM.
  std::vector<float> gmax(cpu::kKlMaxes * rows, -std::numeric_limits<float>::infinity());
  std::vector<float> gsum(cpu::kKlSums * rows, 0.0f), gterms(cpu::kJsdTerms * rows, 0.0f);
  std::vector<float> xgmax(rows, -std::numeric_limits<float>::infinity()), xgsum(rows, 0.0f);
  for (int rank = 0; rank < tp; ++rank) {
    for (size_t i = 0; i < gmax.size(); ++i) gmax[i] = std::max(gmax[i], lmax[rank][i]);
    for (int64_t r = 0; r < rows; ++r) xgmax[r] = std::max(xgmax[r], xmax[rank][r]);
  }
  for (int rank = 0; rank < tp; ++rank) {
    cpu::klRescaleSums(lsum[rank].data(), lmax[rank].data(), gmax.data(), rows, d);
    cpu::xentRescaleSums(xsum[rank].data(), xmax[rank].data(), xgmax.data(), rows);
    for (size_t i = 0; i < gsum.size(); ++i) gsum[i] += lsum[rank][i];
    for (int64_t r = 0; r < rows; ++r) xgsum[r] += xsum[rank][r];
  }
  if (d == Divergence::kJsd) {
    for (int rank = 0; rank < tp; ++rank) {
      cpu::klJsdTerms(terms[rank].data(), zs[rank].data(), zt[rank].data(), gmax.data(),
                      gsum.data(), rows, slices[rank], temperature);
      for (size_t i = 0; i < gterms.size(); ++i) gterms[i] += terms[rank][i];
    }
  }
  GuardedBuffer<float> loss(rows);
  cpu::klLoss(loss.data(), gsum.data(), gterms.data(), rows, d);
  EXPECT_TRUE(loss.guardIntact());
  SplitResult out{loss.values(), std::vector<float>(rows * p.vocab, NAN)};
  const cpu::XentGradTerm xent{xgmax.data(), xgsum.data(), p.targets.data(), xent_scale};
  for (int rank = 0; rank < tp; ++rank) {
    // In place over the student's logits, as the LM head does.
    cpu::klBackward(zs[rank].data(), zs[rank].data(), zt[rank].data(), gmax.data(), gsum.data(),
                    loss.data(), gterms.data(), rows, slices[rank], temperature, d, row_scale,
                    xent_scale > 0 ? &xent : nullptr);
    EXPECT_TRUE(zs[rank].guardIntact() && zt[rank].guardIntact() && lmax[rank].guardIntact() &&
                lsum[rank].guardIntact() && terms[rank].guardIntact())
        << "rank " << rank;
    test::gatherVocabSlice(out.grad, zs[rank].data(), rows, p.vocab, slices[rank].start, v_local);
  }
  return out;
}

void expectSplitMatchesReference(const Problem& p, int tp, int64_t v_local, float temperature,
                                 Divergence d, float xent_scale = 0.0f) {
  SCOPED_TRACE(std::string(name(d)) + " rows " + std::to_string(p.rows) + " vocab " +
               std::to_string(p.vocab) + " tp " + std::to_string(tp) + " T " +
               std::to_string(temperature) + " xent " + std::to_string(xent_scale));
  const float row_scale = 0.25f;
  const SplitResult got = runSplit(p, tp, v_local, temperature, d, row_scale, xent_scale);
  std::vector<float> loss(p.rows), grad(p.rows * p.vocab);
  cpu::ref::klForward(loss.data(), p.student.data(), p.teacher.data(), p.rows, p.vocab, temperature,
                      d);
  cpu::ref::klBackward(grad.data(), p.student.data(), p.teacher.data(), p.rows, p.vocab,
                       temperature, d, row_scale);
  if (xent_scale > 0) {
    std::vector<float> ce(p.rows * p.vocab);
    cpu::ref::crossEntropyBackward(ce.data(), p.student.data(), p.targets.data(), p.rows, p.vocab,
                                   xent_scale);
    for (size_t i = 0; i < grad.size(); ++i) grad[i] += ce[i];
  }
  const double size = sizeOf(p, temperature);
  EXPECT_TRUE(allClose(got.loss.data(), loss.data(), loss.size(), Tolerance{kRtol * size, kRtol}))
      << "loss";
  // A gradient element is row_scale / T times a probability times (for reverse_kl and jsd) a
  // log-ratio of size up to `size`.
  const double gscale = (row_scale / temperature + xent_scale) * size;
  EXPECT_TRUE(allClose(got.grad.data(), grad.data(), grad.size(), Tolerance{kRtol * gscale, kRtol}))
      << "grad";
}

TEST(Kl, SplitVocabularyMatchesReference) {
  uint32_t seed = 1;
  for (Divergence d : kAll)
    for (int64_t vocab : {1, 2, 17, 100, 1000, 4099})
      for (int64_t rows : {1, 3, 37})
        for (int tp : {1, 2, 3, 4}) {
          const Problem p = makeProblem(rows, vocab, seed++);
          const float temperature = seed % 3 == 0 ? 1.0f : seed % 3 == 1 ? 2.0f : 0.7f;
          expectSplitMatchesReference(p, tp, (vocab + tp - 1) / tp, temperature, d);
          if (HasFailure()) return;
        }
}

// The combined distillation loss's single gradient: divergence and cross-entropy in one pass.
TEST(Kl, FusedCrossEntropyGradient) {
  uint32_t seed = 100;
  for (Divergence d : kAll)
    for (int tp : {1, 2, 4}) {
      const Problem p = makeProblem(23, 301, seed++);
      expectSplitMatchesReference(p, tp, (301 + tp - 1) / tp, 2.0f, d, 0.125f);
    }
}

// Threads (CTest runs this at 1 and 2): rows x vocabulary above the OpenMP threshold (2^16)
// opens a parallel region over 16-row chunks. 37 rows x 4099 (above) are 3 chunks, split over
// the threads; these 5 rows are one chunk, so one thread gets no work.
TEST(Kl, FewRowsAboveTheThreadThreshold) {
  for (Divergence d : kAll) {
    const Problem p = makeProblem(5, 20011, 90);
    for (int tp : {1, 2}) expectSplitMatchesReference(p, tp, (20011 + tp - 1) / tp, 2.0f, d);
  }
}

// More padding than a multiple of tp: whole ranks hold only padding ids.
TEST(Kl, RanksHoldingOnlyPadding) {
  for (Divergence d : kAll) {
    const Problem p = makeProblem(13, 5, 50);
    expectSplitMatchesReference(p, 4, 4, 2.0f, d, 0.5f);  // ids 0..15: ranks 2, 3 all padding
    expectSplitMatchesReference(p, 3, 16, 1.0f, d);       // rank 0 holds everything
  }
}

// Logits around 1000 with spread 30: exp without the max subtraction would overflow.
TEST(Kl, LargeLogitsAreStable) {
  for (Divergence d : kAll) {
    const Problem p = makeProblem(19, 777, 60, 30.0f, 1000.0f);
    for (int tp : {1, 3}) expectSplitMatchesReference(p, tp, (777 + tp - 1) / tp, 1.5f, d);
  }
}

// Identical distributions: every divergence and its gradient vanish.
TEST(Kl, IdenticalDistributionsGiveZero) {
  Problem p = makeProblem(7, 333, 70);
  p.teacher = p.student;
  for (Divergence d : kAll) {
    const SplitResult got = runSplit(p, 2, 167, 2.0f, d, 1.0f, 0.0f);
    for (float l : got.loss) EXPECT_NEAR(l, 0.0f, 1e-5) << name(d);
    EXPECT_LT(test::maxAbs(got.grad), 1e-6) << name(d);
  }
}

// Rows are independent and each computed in a fixed order: thread count does not matter.
TEST(Kl, ThreadCountDoesNotChangeResults) {
  const Problem p = makeProblem(300, 1111, 80);
  for (Divergence d : kAll) {
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    const SplitResult one = runSplit(p, 2, 556, 2.0f, d, 0.01f, 0.02f);
    omp_set_num_threads(3);
    const SplitResult three = runSplit(p, 2, 556, 2.0f, d, 0.01f, 0.02f);
    omp_set_num_threads(saved);
    EXPECT_TRUE(test::sameBits(one.loss.data(), three.loss.data(), one.loss.size())) << name(d);
    EXPECT_TRUE(test::sameBits(one.grad.data(), three.grad.data(), one.grad.size())) << name(d);
  }
}

// --- top-k form ---

struct TopkProblem {
  int64_t rows, vocab, k;
  std::vector<float> student;   // [rows, vocab]
  std::vector<uint32_t> ids;    // [rows, k], distinct per row
  std::vector<float> logprobs;  // [rows, k]
};

TopkProblem makeTopk(int64_t rows, int64_t vocab, int64_t k, uint32_t seed) {
  TopkProblem p{rows, vocab, k, test::normalValues(rows * vocab, seed, 3.0f), {}, {}};
  std::mt19937 rng(seed + 5);
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<uint32_t> all(vocab);
    std::iota(all.begin(), all.end(), 0u);
    for (int64_t j = 0; j < k; ++j) std::swap(all[j], all[j + rng() % (vocab - j)]);
    // Teacher log-probabilities: a sorted, decreasing list below 0 as teacher-logits writes.
    std::vector<float> lp = test::normalValues(k, seed + 7 + uint32_t(r), 2.0f, -3.0f);
    std::sort(lp.begin(), lp.end(), std::greater<>());
    for (int64_t j = 0; j < k; ++j) {
      p.ids.push_back(all[j]);
      p.logprobs.push_back(std::min(lp[j], 0.0f));
    }
  }
  return p;
}

SplitResult runTopkSplit(const TopkProblem& p, int tp, int64_t v_local, float temperature,
                         float teacher_scale, Divergence d, float row_scale) {
  const int64_t rows = p.rows, k = p.k;
  std::vector<GuardedBuffer<float>> zs, lmax, lsum, terms, gk;
  std::vector<VocabSlice> slices;
  for (int rank = 0; rank < tp; ++rank) {
    const VocabSlice s{rank * v_local, v_local, p.vocab};
    slices.push_back(s);
    zs.emplace_back(rows * v_local);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < v_local; ++c) {
        const int64_t id = s.start + c;
        zs[rank][r * v_local + c] = id < p.vocab ? p.student[r * p.vocab + id] : kPadLogit;
      }
    lmax.emplace_back(cpu::kKlMaxes * rows);
    lsum.emplace_back(cpu::kKlSums * rows);
    terms.emplace_back(cpu::kJsdTerms * rows);
    gk.emplace_back(rows * k);
    cpu::klTopkRowStats(lmax[rank].data(), lsum[rank].data(), zs[rank].data(), p.ids.data(),
                        p.logprobs.data(), k, rows, s, temperature, teacher_scale, d);
  }
  std::vector<float> gmax(cpu::kKlMaxes * rows, -std::numeric_limits<float>::infinity());
  std::vector<float> gsum(cpu::kKlSums * rows, 0.0f), gterms(cpu::kJsdTerms * rows, 0.0f);
  for (int rank = 0; rank < tp; ++rank)
    for (size_t i = 0; i < gmax.size(); ++i) gmax[i] = std::max(gmax[i], lmax[rank][i]);
  for (int rank = 0; rank < tp; ++rank) {
    cpu::klRescaleSums(lsum[rank].data(), lmax[rank].data(), gmax.data(), rows, d);
    for (size_t i = 0; i < gsum.size(); ++i) gsum[i] += lsum[rank][i];
  }
  if (d == Divergence::kJsd) {
    for (int rank = 0; rank < tp; ++rank) {
      cpu::klTopkJsdTerms(terms[rank].data(), zs[rank].data(), p.ids.data(), p.logprobs.data(), k,
                          gmax.data(), gsum.data(), rows, slices[rank], temperature, teacher_scale);
      for (size_t i = 0; i < gterms.size(); ++i) gterms[i] += terms[rank][i];
    }
  }
  GuardedBuffer<float> loss(rows);
  cpu::klLoss(loss.data(), gsum.data(), gterms.data(), rows, d);
  SplitResult out{loss.values(), std::vector<float>(rows * p.vocab, NAN)};
  for (int rank = 0; rank < tp; ++rank) {
    cpu::klTopkBackward(gk[rank].data(), zs[rank].data(), p.ids.data(), p.logprobs.data(), k,
                        gmax.data(), gsum.data(), loss.data(), gterms.data(), rows, slices[rank],
                        temperature, teacher_scale, d, row_scale);
    // The student's buffer after another loss's in-place backward: here zero, then the
    // divergence's gradient added at the k ids.
    std::fill(zs[rank].data(), zs[rank].data() + rows * v_local, 0.0f);
    cpu::klTopkScatterAdd(zs[rank].data(), gk[rank].data(), p.ids.data(), k, rows, slices[rank]);
    EXPECT_TRUE(zs[rank].guardIntact() && gk[rank].guardIntact() && lmax[rank].guardIntact() &&
                lsum[rank].guardIntact() && terms[rank].guardIntact());
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < v_local; ++c) {
        const int64_t id = slices[rank].start + c;
        const float g = zs[rank][r * v_local + c];
        if (id < p.vocab)
          out.grad[r * p.vocab + id] = g;
        else
          EXPECT_EQ(g, 0.0f);
      }
  }
  return out;
}

TEST(KlTopk, SplitVocabularyMatchesReference) {
  uint32_t seed = 200;
  for (Divergence d : kAll)
    for (int64_t vocab : {3, 50, 1000})
      for (int64_t k : {1, 2, 3, 16})
        for (int tp : {1, 2, 4}) {
          if (k > vocab) continue;
          const TopkProblem p = makeTopk(11, vocab, k, seed++);
          const float temperature = 2.0f, teacher_scale = seed % 2 ? 1.0f : 0.5f;
          SCOPED_TRACE(std::string(name(d)) + " vocab " + std::to_string(vocab) + " k " +
                       std::to_string(k) + " tp " + std::to_string(tp));
          const float row_scale = 0.5f;
          const SplitResult got =
              runTopkSplit(p, tp, (vocab + tp - 1) / tp, temperature, teacher_scale, d, row_scale);
          std::vector<float> loss(p.rows), grad(p.rows * vocab);
          cpu::ref::klTopkForward(loss.data(), p.student.data(), p.ids.data(), p.logprobs.data(), k,
                                  p.rows, vocab, temperature, teacher_scale, d);
          cpu::ref::klTopkBackward(grad.data(), p.student.data(), p.ids.data(), p.logprobs.data(),
                                   k, p.rows, vocab, temperature, teacher_scale, d, row_scale);
          const double size = test::maxAbs(p.student) / temperature + test::maxAbs(p.logprobs) +
                              std::log(double(k)) + 1;
          EXPECT_TRUE(
              allClose(got.loss.data(), loss.data(), loss.size(), Tolerance{kRtol * size, kRtol}));
          EXPECT_TRUE(allClose(got.grad.data(), grad.data(), grad.size(),
                               Tolerance{kRtol * size * row_scale / temperature, kRtol}));
          if (HasFailure()) return;
        }
}

TEST(KlTopk, IdBeyondVocabularyIsAnError) {
  const float student[4] = {0, 1, 2, 3}, lp[1] = {-0.1f};
  const uint32_t ids[1] = {3};  // id 3 is padding when the vocabulary has 3 ids
  float m[2], s[3];
  EXPECT_THROW(cpu::klTopkRowStats(m, s, student, ids, lp, 1, 1, VocabSlice{0, 4, 3}, 1.0f, 1.0f,
                                   Divergence::kForwardKl),
               Error);
}

// --- the references against central differences (double, tiny shapes) ---

TEST(KlReference, BackwardMatchesFiniteDifferences) {
  const int64_t rows = 3, vocab = 7;
  const double row_scale = 0.37, temperature = 1.7;
  std::vector<double> zs, zt;
  for (float v : test::normalValues(rows * vocab, 90, 2.0f)) zs.push_back(v);
  for (float v : test::normalValues(rows * vocab, 91, 2.0f)) zt.push_back(v);
  for (Divergence d : kAll) {
    auto objective = [&](const std::vector<double>& x) {
      std::vector<double> l(rows);
      cpu::ref::klForward(l.data(), x.data(), zt.data(), rows, vocab, temperature, d);
      return row_scale * std::accumulate(l.begin(), l.end(), 0.0);
    };
    std::vector<double> grad(rows * vocab);
    cpu::ref::klBackward(grad.data(), zs.data(), zt.data(), rows, vocab, temperature, d, row_scale);
    const std::vector<double> fd = test::centralDifferences(objective, zs);
    EXPECT_TRUE(allClose(grad.data(), fd.data(), fd.size(), Tolerance{1e-9, 1e-6})) << name(d);
    EXPECT_GT(test::maxAbs(grad), 1e-3) << name(d);
  }
}

// The top-k reference's forward renormalises the full-vocabulary softmax literally; its
// backward's claim (gradient only at the k ids, the softmax-over-k formula) is checked here.
TEST(KlReference, TopkBackwardMatchesFiniteDifferences) {
  const int64_t rows = 2, vocab = 9, k = 4;
  const double row_scale = 0.8, temperature = 2.0, teacher_scale = 0.75;
  std::vector<double> zs, lp;
  for (float v : test::normalValues(rows * vocab, 95, 2.0f)) zs.push_back(v);
  for (float v : test::normalValues(rows * k, 96, 1.0f, -2.0f)) lp.push_back(v);
  const std::vector<uint32_t> ids = {4, 0, 8, 2, 1, 7, 3, 5};
  for (Divergence d : kAll) {
    auto objective = [&](const std::vector<double>& x) {
      std::vector<double> l(rows);
      cpu::ref::klTopkForward(l.data(), x.data(), ids.data(), lp.data(), k, rows, vocab,
                              temperature, teacher_scale, d);
      return row_scale * std::accumulate(l.begin(), l.end(), 0.0);
    };
    std::vector<double> grad(rows * vocab);
    cpu::ref::klTopkBackward(grad.data(), zs.data(), ids.data(), lp.data(), k, rows, vocab,
                             temperature, teacher_scale, d, row_scale);
    const std::vector<double> fd = test::centralDifferences(objective, zs);
    EXPECT_TRUE(allClose(grad.data(), fd.data(), fd.size(), Tolerance{1e-9, 1e-6})) << name(d);
    EXPECT_GT(test::maxAbs(grad), 1e-3) << name(d);
  }
}

// --- the references against PyTorch ---

TEST(KlReference, MatchesPyTorch) {
  const int64_t rows = 5, vocab = 41, k = 6;
  const double temperature = 2.5, teacher_scale = 0.8;
  const Problem p = makeProblem(rows, vocab, 300, 2.0f);
  const TopkProblem tk = makeTopk(rows, vocab, k, 301);
  test::TempDir dir;
  nlohmann::json in = {{"rows", rows},
                       {"vocab", vocab},
                       {"k", k},
                       {"temperature", temperature},
                       {"teacher_scale", teacher_scale},
                       {"student", p.student},
                       {"teacher", p.teacher},
                       {"topk_student", tk.student},
                       {"ids", tk.ids},
                       {"logprobs", tk.logprobs}};
  std::ofstream(dir / "in.json") << in.dump();
  std::string output;
  const std::string script = test::sourceDir() + "/tests/kl_torch_reference.py";
  ASSERT_EQ(test::runCommand(
                "/usr/bin/python3 " + script + " " + (dir / "in.json") + " " + (dir / "out.json"),
                &output),
            0)
      << output;
  nlohmann::json out;
  std::ifstream(dir / "out.json") >> out;
  for (Divergence d : kAll) {
    SCOPED_TRACE(name(d));
    // Both sides in double from the same fp32 inputs: agreement to ~1e-12; 1e-9 leaves room
    // for a different summation order and log1p/exp implementations. The torch script
    // differentiates sum_r D_r: row_scale 1.
    const std::vector<double> zs(p.student.begin(), p.student.end());
    const std::vector<double> zt(p.teacher.begin(), p.teacher.end());
    std::vector<double> loss(rows), grad(rows * vocab);
    cpu::ref::klForward(loss.data(), zs.data(), zt.data(), rows, vocab, temperature, d);
    cpu::ref::klBackward(grad.data(), zs.data(), zt.data(), rows, vocab, temperature, d, 1.0);
    const auto tl = out[name(d)]["loss"].get<std::vector<double>>();
    const auto tg = out[name(d)]["grad"].get<std::vector<double>>();
    EXPECT_TRUE(allClose(loss, tl, 1e-9, 1e-9));
    EXPECT_TRUE(allClose(grad, tg, 1e-9, 1e-9));
    EXPECT_GT(test::maxAbs(tl), 1e-2);

    std::vector<double> topk_loss(rows), topk_grad(rows * vocab);
    const std::vector<double> tzs(tk.student.begin(), tk.student.end());
    const std::vector<double> lp(tk.logprobs.begin(), tk.logprobs.end());
    cpu::ref::klTopkForward(topk_loss.data(), tzs.data(), tk.ids.data(), lp.data(), k, rows, vocab,
                            temperature, teacher_scale, d);
    cpu::ref::klTopkBackward(topk_grad.data(), tzs.data(), tk.ids.data(), lp.data(), k, rows, vocab,
                             temperature, teacher_scale, d, 1.0);
    const auto ttl = out[std::string("topk_") + name(d)]["loss"].get<std::vector<double>>();
    const auto ttg = out[std::string("topk_") + name(d)]["grad"].get<std::vector<double>>();
    EXPECT_TRUE(allClose(topk_loss, ttl, 1e-9, 1e-9));
    EXPECT_TRUE(allClose(topk_grad, ttg, 1e-9, 1e-9));

    // And the fp32 vocabulary-parallel kernels against torch directly (tp = 2).
    const SplitResult split = runSplit(p, 2, (vocab + 1) / 2, float(temperature), d, 1.0f, 0.0f);
    const double size = sizeOf(p, temperature);
    EXPECT_TRUE(allClose(split.loss.data(), tl.data(), rows, Tolerance{kRtol * size, kRtol}));
    EXPECT_TRUE(allClose(split.grad.data(), tg.data(), tg.size(),
                         Tolerance{kRtol * size / temperature, kRtol}));
  }
}

}  // namespace
}  // namespace kdgrid
