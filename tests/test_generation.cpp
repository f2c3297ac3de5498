// Generation with a KV cache against the full-recompute reference (train/generation.h) on
// small random models: the same tokens (greedy, and sampled with a fixed seed) and the same
// next-token logits within fp32 rounding at every step, also with a sliding attention window,
// past max_seq (the context slides) and for a prompt longer than max_seq; the batched decode
// (several sequences in one cache) gives each sequence's single-sequence logits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "src/inference/generation.h"
#include "src/model/gpt2.h"
#include "src/model/params.h"
#include "src/parallel/grid.h"
#include "src/tensor/runtime.h"

namespace kdgrid {
namespace {

ModelConfig model(int64_t max_seq, int window) {
  ModelConfig c;
  c.n_layer = 2;
  c.n_head = 3;
  c.d_model = 48;  // head_dim 16
  c.d_ff = 80;
  c.vocab_size = 97;
  c.max_seq = max_seq;
  c.attn_window = window;
  return c;
}

// The whole model on this rank, random weights from `seed`. The keyed init draws weights with
// std 0.02, which leaves all 97 logits within ~0.1 of each other; the weights are scaled up so
// that next-token distributions are peaked (as a trained model's are) and greedy choices are
// not decided by rounding.
class Model {
 public:
  explicit Model(const ModelConfig& config, uint64_t seed = 3) {
    GridConfig gc;
    resolveGridFor(gc, 1, config);
    grid_ = std::make_unique<ProcessGrid>(gc);
    stage_ = std::make_unique<Gpt2Stage>(config, 1, 0, grid_->tpComm(), DType::kF32,
                                         Recompute::kNone, rt_);
    initializeParameters(stage_->layout(), seed, stage_->params().data<float>());
    float* p = stage_->params().data<float>();
    for (size_t i = 0; i < stage_->layout().totalElements(); ++i) p[i] *= 8.0f;
    stage_->syncComputeWeights();
  }
  Gpt2Stage& stage() { return *stage_; }

 private:
  Runtime rt_;
  std::unique_ptr<ProcessGrid> grid_;
  std::unique_ptr<Gpt2Stage> stage_;
};

std::vector<uint32_t> prompt(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint32_t> ids(n);
  for (auto& id : ids) id = static_cast<uint32_t>(rng() % 97);
  return ids;
}

struct Generated {
  std::vector<uint32_t> ids;
  std::vector<std::vector<float>> logits;  // per step, [vocab]
};

Generated generate(Gpt2Stage& m, std::vector<uint32_t> ids, const GenerateOptions& options,
             DecodePath path) {
  Generated run;
  std::mt19937_64 rng(42);
  generateTokens(m, ids, options, rng, path, [&](std::span<const float> logits) {
    run.logits.emplace_back(logits.begin(), logits.end());
  });
  run.ids = std::move(ids);
  return run;
}

// Logits of the two paths come from GEMMs of different shapes (M = 1 against M = context) and
// attention kernels summing in different orders: fp32 rounding of O(1)-sized sums over at most
// d_model = 48 or d_ff = 80 terms, a few 1e-7 relative each, through 2 blocks and the LM
// head. 1e-4 of the largest logit (and relatively) is ~100x that and still far below the gaps
// that decide greedy choices.
void expectSameLogits(const Generated& kv, const Generated& recompute) {
  ASSERT_EQ(kv.logits.size(), recompute.logits.size());
  double worst = 0;
  for (size_t s = 0; s < kv.logits.size(); ++s) {
    const auto& a = kv.logits[s];
    const auto& b = recompute.logits[s];
    double scale = 0;
    for (float x : b) scale = std::max(scale, double(std::fabs(x)));
    for (size_t i = 0; i < a.size(); ++i) {
      ASSERT_TRUE(std::isfinite(a[i])) << "step " << s << " id " << i;
      const double diff = std::fabs(double(a[i]) - b[i]);
      worst = std::max(worst, diff / scale);
      ASSERT_LE(diff, 1e-4 * scale + 1e-4 * std::fabs(b[i])) << "step " << s << " id " << i;
    }
  }
  ::testing::Test::RecordProperty("worst_relative_logit_diff", std::to_string(worst));
}

void expectPathsAgree(const ModelConfig& config, int prompt_len, int new_tokens, float temperature,
                      const std::string& what) {
  SCOPED_TRACE(what);
  Model m(config);
  GenerateOptions options;
  options.max_new_tokens = new_tokens;
  options.sampling = {.temperature = temperature, .top_k = 0, .top_p = 1.0f};
  const auto ids = prompt(prompt_len, 9);
  const Generated kv = generate(m.stage(), ids, options, DecodePath::kKvCache);
  const Generated recompute = generate(m.stage(), ids, options, DecodePath::kRecompute);
  ASSERT_EQ(kv.ids.size(), ids.size() + new_tokens);  // no stop token: every step draws
  EXPECT_EQ(kv.ids, recompute.ids);
  expectSameLogits(kv, recompute);
  // Not a degenerate sequence: the draws vary.
  std::vector<uint32_t> drawn(kv.ids.begin() + prompt_len, kv.ids.end());
  std::sort(drawn.begin(), drawn.end());
  EXPECT_GT(std::unique(drawn.begin(), drawn.end()) - drawn.begin(), 2) << "one repeated token";
}

TEST(Generation, GreedyKvCacheMatchesRecompute) {
  expectPathsAgree(model(32, 0), 5, 20, 0.0f, "greedy, within max_seq");
}

TEST(Generation, SampledKvCacheMatchesRecompute) {
  expectPathsAgree(model(32, 0), 3, 25, 1.0f, "sampled, seed 42");
}

TEST(Generation, SlidingWindowAttention) {
  expectPathsAgree(model(32, 4), 6, 20, 1.0f, "attn_window 4");
}

TEST(Generation, ContextSlidesPastMaxSeq) {
  // 5 + 30 tokens through a 16-position model: 19 steps past a full cache.
  expectPathsAgree(model(16, 0), 5, 30, 1.0f, "past max_seq");
  expectPathsAgree(model(16, 3), 5, 30, 0.0f, "past max_seq, window 3, greedy");
  // The prompt alone exceeds max_seq.
  expectPathsAgree(model(16, 0), 21, 10, 1.0f, "prompt longer than max_seq");
}

TEST(Generation, StopTokenEndsWithoutAppending) {
  Model m(model(32, 0));
  GenerateOptions options;
  options.max_new_tokens = 20;
  options.sampling.temperature = 0;
  const auto ids = prompt(4, 9);
  const Generated unstopped = generate(m.stage(), ids, options, DecodePath::kKvCache);
  options.stop_token = unstopped.ids[6];  // the third drawn token
  const Generated stopped = generate(m.stage(), ids, options, DecodePath::kKvCache);
  const auto first = std::find(unstopped.ids.begin() + 4, unstopped.ids.end(), unstopped.ids[6]);
  EXPECT_EQ(stopped.ids, std::vector<uint32_t>(unstopped.ids.begin(), first));
}

// Three sequences decoded in one cache: each sequence's logits equal its own B = 1 run.
TEST(Generation, BatchedCacheMatchesSingleSequences) {
  Model m(model(24, 5));
  Gpt2Stage& s = m.stage();
  const int64_t B = 3, n = 7, V = s.config().vocab_size, steps = 10;
  const auto prompts = prompt(B * n, 5);
  const auto tokens = prompt(B * steps, 6);  // fed tokens [steps, B]
  KvCache batched = s.makeKvCache(B);
  std::vector<float> logits(B * V);
  std::vector<std::vector<float>> got;  // [step][B * V]
  s.prefill(batched, prompts.data(), n, logits.data());
  got.push_back(logits);
  for (int64_t t = 0; t < steps; ++t) {
    s.decodeStep(batched, tokens.data() + t * B, logits.data());
    got.push_back(logits);
  }
  EXPECT_EQ(batched.len, n + steps);
  for (int64_t b = 0; b < B; ++b) {
    KvCache one = s.makeKvCache(1);
    std::vector<float> want(V);
    s.prefill(one, prompts.data() + b * n, n, want.data());
    for (int64_t t = 0; t <= steps; ++t) {
      if (t > 0) s.decodeStep(one, tokens.data() + (t - 1) * B + b, want.data());
      for (int64_t i = 0; i < V; ++i)
        ASSERT_NEAR(got[t][b * V + i], want[i], 1e-4 * (1 + std::fabs(want[i])))
            << "sequence " << b << " step " << t << " id " << i;
    }
  }
}

}  // namespace
}  // namespace kdgrid
