// Gpt2Stage memory paths on one rank: --recompute none | selective | full give bit-identical
// gradients (recomputation replays the same kernels on the same inputs) while full
// recompute keeps well under half the activation memory (TensorPool high-water mark) of
// none; zeroGrads() (weight-gradient GEMMs write instead of adding to zeros) gives the same
// gradients as zeroing by hand, also when a second micro-batch accumulates.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "src/model/gpt2.h"
#include "src/model/params.h"
#include "src/parallel/grid.h"
#include "src/tensor/runtime.h"
#include "src/tensor/staging.h"

namespace kdgrid {
namespace {

// Small enough to run in milliseconds, with activations (not the logits) dominating the
// memory: N = 256 tokens x C = 32, vocabulary 64.
ModelConfig tinyModel() {
  ModelConfig c;
  c.n_layer = 4;
  c.n_head = 2;
  c.d_model = 32;
  c.d_ff = 128;
  c.vocab_size = 64;
  c.max_seq = 64;
  return c;
}
constexpr int64_t kBatch = 4;

struct Tokens {
  std::vector<uint32_t> inputs, targets;
  explicit Tokens(uint64_t seed) {
    const ModelConfig c = tinyModel();
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<uint32_t> pick(0, c.vocab_size - 1);
    for (int64_t i = 0; i < kBatch * c.max_seq; ++i) {
      inputs.push_back(pick(rng));
      targets.push_back(pick(rng));
    }
  }
};

// One stage holding the whole model, initialised from seed 7.
class Stage {
 public:
  Stage(ProcessGrid& grid, DType dtype, Recompute recompute)
      : model_(tinyModel(), 1, 0, grid.tpComm(), dtype, recompute, rt_) {
    initializeParameters(model_.layout(), 7, model_.params().data<float>());
    model_.syncComputeWeights();
  }
  Gpt2Stage& model() { return model_; }
  TensorPool& pool() { return rt_.pool; }
  std::vector<float> grads() {
    return toHost<float>(model_.grads());
  }
  // Forward, loss and backward of one micro-batch; parameter gradients accumulate.
  void microBatch(const Tokens& tokens) {
    const int64_t T = model_.config().max_seq;
    StageActivations acts;
    model_.forward(acts, tokens.inputs.data(), nullptr, kBatch, T);
    Tensor dout;
    model_.headForwardBackward(acts, tokens.targets.data(), 1.0f / (kBatch * T), &dout);
    model_.backward(acts, dout);
  }

 private:
  Runtime rt_;  // before model_, which keeps a reference
  Gpt2Stage model_;
};

std::unique_ptr<ProcessGrid> oneRankGrid() {
  GridConfig gc;
  resolveGridFor(gc, 1, tinyModel());
  return std::make_unique<ProcessGrid>(gc);
}

bool bitwiseEqual(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

class Gpt2Recompute : public ::testing::TestWithParam<DType> {};

TEST_P(Gpt2Recompute, ModesGiveIdenticalGradients) {
  auto grid = oneRankGrid();
  const Tokens tokens(1);
  std::vector<std::vector<float>> grads;
  for (Recompute r : {Recompute::kNone, Recompute::kSelective, Recompute::kFull}) {
    Stage s(*grid, GetParam(), r);
    s.model().zeroGrads();
    s.microBatch(tokens);
    grads.push_back(s.grads());
  }
  EXPECT_TRUE(std::any_of(grads[0].begin(), grads[0].end(), [](float g) { return g != 0; }));
  EXPECT_TRUE(bitwiseEqual(grads[0], grads[1])) << "selective differs from none";
  EXPECT_TRUE(bitwiseEqual(grads[0], grads[2])) << "full differs from none";
}

INSTANTIATE_TEST_SUITE_P(Precisions, Gpt2Recompute, ::testing::Values(DType::kF32, DType::kBF16),
                         [](const auto& info) { return std::string(dtypeName(info.param)); });

TEST(Gpt2Memory, FullRecomputeCutsActivationMemory) {
  auto grid = oneRankGrid();
  const Tokens tokens(2);
  std::vector<size_t> peak;
  for (Recompute r : {Recompute::kNone, Recompute::kSelective, Recompute::kFull}) {
    Stage s(*grid, DType::kF32, r);
    s.model().zeroGrads();
    s.microBatch(tokens);  // first step: every buffer is new
    s.pool().resetPeak();
    s.model().zeroGrads();
    s.microBatch(tokens);
    peak.push_back(s.pool().peakBytes());
    EXPECT_EQ(s.pool().liveBytes(), 0u) << "a micro-batch left activations alive";
  }
  // none keeps ~16 [N, C]-sized tensors per block; full keeps each block's input and
  // recomputes one block at a time (~20 in all for 4 blocks).
  EXPECT_LT(peak[1], peak[0]);
  EXPECT_LT(peak[2], peak[1]);
  EXPECT_LE(peak[2] * 10, peak[0] * 4) << "full " << peak[2] << " B vs none " << peak[0] << " B";
}

TEST(Gpt2Memory, ZeroGradsMatchesZeroingByHand) {
  auto grid = oneRankGrid();
  const Tokens first(3), second(4);
  Stage a(*grid, DType::kF32, Recompute::kNone), b(*grid, DType::kF32, Recompute::kNone);
  a.model().zeroGrads();
  b.model().grads().zero();
  a.microBatch(first);
  b.microBatch(first);
  EXPECT_TRUE(bitwiseEqual(a.grads(), b.grads()));
  a.microBatch(second);  // accumulates in both
  b.microBatch(second);
  EXPECT_TRUE(bitwiseEqual(a.grads(), b.grads()));
  // A second zeroGrads() really clears what the micro-batches left.
  a.model().zeroGrads();
  const std::vector<float> g = a.grads();
  EXPECT_TRUE(std::all_of(g.begin(), g.end(), [](float x) { return x == 0.0f; }));
}

}  // namespace
}  // namespace kdgrid
