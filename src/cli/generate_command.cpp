// kdgrid generate: sample text from a checkpoint (one rank does the work; others wait).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>

#include "cli/commands.h"
#include "core/log.h"
#include "data/tokenizer.h"
#include "train/inference.h"

namespace kdgrid {
namespace {

struct SamplingOptions {
  float temperature = 0.8f;
  int top_k = 40;     // 0 = off
  float top_p = 0.95f;  // 1 = off
};

// Draws the next id from logits [V] (modified in place).
uint32_t sampleToken(std::vector<float>& logits, const SamplingOptions& s, std::mt19937_64& rng) {
  const int V = static_cast<int>(logits.size());
  if (s.temperature <= 0) return std::max_element(logits.begin(), logits.end()) - logits.begin();
  std::vector<int> order(V);
  std::iota(order.begin(), order.end(), 0);
  const int k = s.top_k > 0 ? std::min(s.top_k, V) : V;
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [&](int a, int b) { return logits[a] > logits[b]; });
  order.resize(k);
  std::vector<double> p(k);
  const double max = logits[order[0]];
  double total = 0;
  for (int i = 0; i < k; ++i) total += p[i] = std::exp((logits[order[i]] - max) / s.temperature);
  // Nucleus: the smallest prefix (by probability) whose mass reaches top_p.
  double mass = 0;
  int keep = k;
  for (int i = 0; i < k; ++i) {
    mass += p[i] / total;
    if (mass >= s.top_p) {
      keep = i + 1;
      break;
    }
  }
  std::discrete_distribution<int> pick(p.begin(), p.begin() + keep);
  return static_cast<uint32_t>(order[pick(rng)]);
}

}  // namespace

int runGenerate(const CommandLine& cmd) {
  std::string checkpoint, tokenizer_path, prompt;
  int max_new_tokens = 100, samples = 1;
  uint64_t seed = 0;
  SamplingOptions s;
  po::options_description options("Generation");
  options.add_options()
    ("checkpoint", po::value(&checkpoint)->value_name("CKPT"), "step directory or run directory")
    ("tokenizer", po::value(&tokenizer_path)->value_name("FILE"), "the tokenizer JSON the model was trained with")
    ("prompt", po::value(&prompt)->default_value(""), "text to continue (empty: start after end-of-text)")
    ("max-new-tokens", po::value(&max_new_tokens)->default_value(max_new_tokens), "tokens to generate")
    ("samples", po::value(&samples)->default_value(samples), "independent samples")
    ("temperature", po::value(&s.temperature)->default_value(s.temperature), "softmax temperature (0 = greedy)")
    ("top-k", po::value(&s.top_k)->default_value(s.top_k), "sample among the k most likely tokens (0 = all)")
    ("top-p", po::value(&s.top_p)->default_value(s.top_p), "nucleus sampling mass (1 = off)")
    ("seed", po::value(&seed)->default_value(seed), "sampling seed");
  po::variables_map vm;
  if (!parseOptions(cmd, options, vm)) return kExitOk;
  KDGRID_OPTION_CHECK(!checkpoint.empty(), "--checkpoint is required");
  KDGRID_OPTION_CHECK(!tokenizer_path.empty(), "--tokenizer is required");
  KDGRID_OPTION_CHECK(max_new_tokens >= 1 && samples >= 1, "--max-new-tokens and --samples must be >= 1");
  KDGRID_OPTION_CHECK(s.temperature >= 0, "--temperature must be >= 0");
  KDGRID_OPTION_CHECK(s.top_k >= 0, "--top-k must be >= 0");
  KDGRID_OPTION_CHECK(s.top_p > 0 && s.top_p <= 1, "--top-p must be in (0, 1]");

  Runtime rt;
  // Every rank runs the same single-rank model; rank 0 prints.
  GridConfig single{.dp = worldSize(), .pp = 1, .tp = 1};
  InferenceModel m = loadInferenceModel(checkpoint, single, rt);
  const Tokenizer tokenizer = Tokenizer::load(tokenizer_path);
  KDGRID_INPUT_CHECK(tokenizer.sha256() == m.meta.tokenizer_sha256,
                     "--tokenizer {} is not the tokenizer of checkpoint {} (sha256 differs)",
                     tokenizer_path, m.step_dir);
  const int64_t T = m.meta.model.max_seq;
  std::mt19937_64 rng(seed);
  std::vector<float> logits(m.meta.model.vocab_size);
  for (int sample = 0; sample < samples; ++sample) {
    std::vector<uint32_t> ids = tokenizer.encode(prompt);
    if (ids.empty()) ids.push_back(tokenizer.eotToken());
    for (int i = 0; i < max_new_tokens; ++i) {
      // Recompute over the last max_seq tokens (no KV cache yet).
      const int64_t n = std::min<int64_t>(T, ids.size());
      StageActivations acts;
      m.model->forward(acts, ids.data() + ids.size() - n, nullptr, 1, n);
      m.model->logitsAt(acts, n - 1, logits.data());
      logits.resize(tokenizer.vocabSize());  // padded ids are never sampled
      const uint32_t next = sampleToken(logits, s, rng);
      logits.resize(m.meta.model.vocab_size);
      if (next == tokenizer.eotToken()) break;
      ids.push_back(next);
    }
    if (worldRank() == 0) {
      std::string text = tokenizer.decode(std::span<const uint32_t>(ids).subspan(
          ids.front() == tokenizer.eotToken() ? 1 : 0));
      std::printf("%s%s\n", samples > 1 ? fmt::format("--- sample {} ---\n", sample + 1).c_str() : "",
                  text.c_str());
    }
  }
  return kExitOk;
}

}  // namespace kdgrid
