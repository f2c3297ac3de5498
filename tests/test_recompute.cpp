// Activation recomputation (DESIGN section 9, --recompute none|selective|full): dropping
// activations and recomputing them in backward runs the same ops on the same inputs in the
// same order, so the loss and every parameter gradient must be bit-identical to keeping
// them, in every precision. Two micro-batches are in flight at once (as on a pipeline stage
// under 1F1B), so recomputation must use each micro-batch's own saved inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "src/model/gpt2.h"
#include "src/model/params.h"
#include "src/parallel/grid.h"
#include "src/tensor/staging.h"
#include "tests/test_util.h"

namespace kdgrid {
namespace {

constexpr int kB = 2, kT = 12;

ModelConfig smallModel() {
  ModelConfig c;
  c.n_layer = 3;
  c.n_head = 4;
  c.d_model = 32;
  c.d_ff = 96;
  c.vocab_size = 53;
  c.max_seq = kT;
  c.attn_window = 5;
  return c;
}

struct Result {
  std::vector<double> ce;    // per micro-batch cross-entropy sums
  std::vector<float> grads;  // flat over the layout
};

// Forward of both micro-batches, then head and backward of the second, then of the first.
Result run(ProcessGrid& grid, DType dtype, Recompute recompute) {
  const ModelConfig mc = smallModel();
  Runtime rt;
  Gpt2Stage model(mc, 1, 0, grid.tpComm(), dtype, recompute, rt);
  initializeParameters(model.layout(), 5, model.params().data<float>());
  model.syncComputeWeights();
  std::mt19937 gen(99);
  std::vector<std::vector<uint32_t>> ids(2, std::vector<uint32_t>(kB * kT)), targets = ids;
  for (auto* v : {&ids, &targets}) {
    for (auto& mb : *v) {
      for (auto& id : mb) id = gen() % mc.vocab_size;
    }
  }
  model.grads().zero();
  StageActivations acts[2];
  for (int m = 0; m < 2; ++m) model.forward(acts[m], ids[m].data(), nullptr, kB, kT);
  Result r;
  for (int m : {1, 0}) {
    Tensor dout;
    const float scale = dtype == DType::kF16 ? 1024.0f / (2 * kB * kT) : 1.0f / (2 * kB * kT);
    r.ce.push_back(model.headForwardBackward(acts[m], targets[m].data(), scale, &dout).ce_sum);
    model.backward(acts[m], dout);
  }
  r.grads = toHost<float>(model.grads());
  return r;
}

class RecomputeTest : public ::testing::TestWithParam<DType> {};

TEST_P(RecomputeTest, GradientsAreBitIdentical) {
  const DType dtype = GetParam();
  GridConfig gc{.dp = 1, .pp = 1, .tp = 1};
  resolveGridFor(gc, 1, smallModel());
  ProcessGrid grid(gc);
  const Result none = run(grid, dtype, Recompute::kNone);
  // The run must produce real gradients for the comparison to mean anything.
  double norm = 0;
  for (float g : none.grads) norm += double(g) * g;
  ASSERT_GT(norm, 0.0);
  ASSERT_TRUE(std::isfinite(norm));

  const ParameterLayout layout(smallModel(), 1, 0, 1, 0);
  for (Recompute mode : {Recompute::kSelective, Recompute::kFull}) {
    const char* name = mode == Recompute::kSelective ? "selective" : "full";
    const Result r = run(grid, dtype, mode);
    EXPECT_EQ(r.ce, none.ce) << "--recompute " << name << ": loss differs";
    ASSERT_EQ(r.grads.size(), none.grads.size());
    for (const LocalParam& p : layout.params()) {
      const bool same = std::memcmp(r.grads.data() + p.offset, none.grads.data() + p.offset,
                                    p.numel() * sizeof(float)) == 0;
      EXPECT_TRUE(same) << "--recompute " << name << ": gradient of " << p.spec.name
                        << " differs from --recompute none";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Precisions, RecomputeTest,
                         ::testing::Values(DType::kF32, DType::kBF16, DType::kF16),
                         [](const auto& info) {
                           return info.param == DType::kF32    ? std::string("fp32")
                                  : info.param == DType::kBF16 ? std::string("bf16")
                                                               : std::string("fp16");
                         });

}  // namespace
}  // namespace kdgrid
