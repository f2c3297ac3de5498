// kdgrid generate: sample text from a checkpoint with a KV cache (train/generation.h; a
// context longer than max_seq slides: the model sees its last max_seq tokens).
// Under mpirun every rank loads the whole model and generates the same samples (same seed,
// same arithmetic); rank 0 alone prints. Extra ranks add nothing but memory and CPU load.
#include <cstdio>
#include <random>

#include "data/tokenizer.h"
#include "src/cli/commands.h"
#include "src/core/log.h"
#include "src/inference/generation.h"
#include "src/inference/inference_model.h"
#include "src/tensor/backends.h"

namespace kdgrid {

int runGenerate(const CommandLine& cmd) {
  std::string checkpoint, tokenizer_path, prompt;
  int max_new_tokens = 100, samples = 1;
  uint64_t seed = 0;
  std::string device = "cpu";
  SamplingOptions s;
  po::options_description options("Generation");
  options.add_options()
    ("checkpoint", po::value(&checkpoint)->value_name("CKPT"), "step directory or run directory")
    ("tokenizer", po::value(&tokenizer_path)->value_name("FILE"), "the tokenizer JSON the model was trained with")
    ("prompt", po::value(&prompt)->default_value(""), "text to continue (empty: start after end-of-text)")
    ("max-new-tokens", po::value(&max_new_tokens)->default_value(max_new_tokens), "tokens to generate")
    ("samples", po::value(&samples)->default_value(samples), "independent samples")
    ("temperature", valueWithDefault(&s.temperature), "softmax temperature (0 = greedy)")
    ("top-k", po::value(&s.top_k)->default_value(s.top_k), "sample among the k most likely tokens (0 = all)")
    ("top-p", valueWithDefault(&s.top_p), "nucleus sampling mass (1 = off)")
    ("seed", po::value(&seed)->default_value(seed), "sampling seed")
    ("device", po::value(&device)->default_value(device)->value_name("NAME"), "backend to compute on");
  po::variables_map vm;
  if (!parseOptions(cmd, options, vm)) return kExitOk;
  KDGRID_OPTION_CHECK(!checkpoint.empty(), "--checkpoint is required");
  KDGRID_OPTION_CHECK(!tokenizer_path.empty(), "--tokenizer is required");
  KDGRID_OPTION_CHECK(max_new_tokens >= 1 && samples >= 1, "--max-new-tokens and --samples must be >= 1");
  KDGRID_OPTION_CHECK(s.temperature >= 0, "--temperature must be >= 0");
  KDGRID_OPTION_CHECK(s.top_k >= 0, "--top-k must be >= 0");
  KDGRID_OPTION_CHECK(s.top_p > 0 && s.top_p <= 1, "--top-p must be in (0, 1]");

  Runtime rt(backendNamed(device));
  // Every rank runs the same single-rank model; rank 0 prints.
  GridConfig single{.dp = worldSize(), .pp = 1, .tp = 1};
  InferenceModel m = loadInferenceModel(checkpoint, single, rt);
  const Tokenizer tokenizer = Tokenizer::load(tokenizer_path);
  KDGRID_INPUT_CHECK(tokenizer.sha256() == m.meta.tokenizer_sha256,
                     "--tokenizer {} is not the tokenizer of checkpoint {} (sha256 differs)",
                     tokenizer_path, m.step_dir);
  GenerateOptions generate;
  generate.max_new_tokens = max_new_tokens;
  generate.sample_vocab = tokenizer.vocabSize();  // padded ids are never sampled
  generate.stop_token = tokenizer.eotToken();
  generate.sampling = s;
  std::mt19937_64 rng(seed);
  for (int sample = 0; sample < samples; ++sample) {
    std::vector<uint32_t> ids = tokenizer.encode(prompt);
    if (ids.empty()) ids.push_back(tokenizer.eotToken());
    generateTokens(*m.model, ids, generate, rng);
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
