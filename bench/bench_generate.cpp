// Generation speed, in process: tokens/s and per-token latency (median, p90) of a teacher and
// a student model, each with the KV cache (train/generation.h, what `kdgrid generate` runs) and
// with the full-recompute path for contrast, printed with the ratios student/teacher (KV cache)
// and KV cache/recompute (per model). The four (model, path) runs rotate their order in every
// repeat, so a shared machine slows all alike; figures are over all timed tokens.
//
// Models: two checkpoints (step or run directories), e.g. the quickstart's:
//   build/bench/bench_generate --teacher runs/quickstart/teacher --student runs/quickstart/student
// Without them: random weights in the quickstart's teacher shape (4 layers, d_model 256, 4
// heads, max_seq 128, vocab 4096) and a student of 2 layers, d_model 128, 4 heads (decode time
// does not depend on the weights: the tokens are drawn greedily and never stop early).
//
// A decode step is timed from feeding a token to having the next token's logits; the prompt's
// prefill is timed separately. Prompt + new tokens should stay within max_seq to measure the
// cache (beyond it the context slides and every token costs a prefill; see generation.h).
//
//   OMP_NUM_THREADS=2 build/bench/bench_generate [--prompt-tokens 16] [--new-tokens 100] [--profile]
#include <omp.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_cli.h"
#include "bench/train_step_harness.h"
#include "src/core/mpi_session.h"
#include "src/inference/generation.h"
#include "src/inference/inference_model.h"
#include "src/model/params.h"

namespace po = boost::program_options;
using namespace kdgrid;

namespace {

using Clock = std::chrono::steady_clock;

struct BenchModel {
  std::string name, source;
  Runtime rt;  // before the stage, which keeps a reference
  std::unique_ptr<ProcessGrid> grid;
  std::unique_ptr<Gpt2Stage> stage;
  InferenceModel loaded;
};

std::unique_ptr<BenchModel> randomModel(const std::string& name, const ModelConfig& config) {
  auto m = std::make_unique<BenchModel>();
  m->name = name;
  m->source = "random weights";
  GridConfig gc;
  resolveGridFor(gc, 1, config);
  m->grid = std::make_unique<ProcessGrid>(gc);
  m->stage = std::make_unique<Gpt2Stage>(config, 1, 0, m->grid->tpComm(), DType::kF32,
                                         Recompute::kNone, m->rt);
  initializeParameters(m->stage->layout(), 1, m->stage->params().data<float>());
  m->stage->syncComputeWeights();
  return m;
}

std::unique_ptr<BenchModel> loadedModel(const std::string& name, const std::string& ckpt) {
  auto m = std::make_unique<BenchModel>();
  m->name = name;
  m->loaded = loadInferenceModel(ckpt, GridConfig{.dp = 1, .pp = 1, .tp = 1}, m->rt);
  m->source = m->loaded.step_dir;
  return m;
}

Gpt2Stage& stageOf(BenchModel& m) {
  return m.stage ? *m.stage : *m.loaded.model;
}

struct Timings {
  std::vector<double> token_s;    // per decode step
  std::vector<double> prefill_s;  // per generation
};

// One greedy generation of `new_tokens` after `prompt`, steps timed.
void generateTimed(Gpt2Stage& model, DecodePath path, const std::vector<uint32_t>& prompt,
                   int new_tokens, Timings& out) {
  TokenDecoder decoder(model, path);
  auto t0 = Clock::now();
  std::span<const float> logits = decoder.start(prompt);
  out.prefill_s.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  for (int i = 1; i < new_tokens; ++i) {
    const auto next = static_cast<uint32_t>(std::max_element(logits.begin(), logits.end()) -
                                            logits.begin());
    t0 = Clock::now();
    logits = decoder.append(next);
    out.token_s.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
}

}  // namespace

int main(int argc, char** argv) {
  MpiSession mpi(&argc, &argv);
  std::string teacher_ckpt, student_ckpt;
  int prompt_tokens = 16, new_tokens = 100, reps = 3, warmup = 1;
  po::options_description opts("bench_generate options");
  opts.add_options()("help,h", "print this help")(
      "teacher", po::value(&teacher_ckpt), "teacher checkpoint (step or run directory)")(
      "student", po::value(&student_ckpt), "student checkpoint (step or run directory)")(
      "prompt-tokens", po::value(&prompt_tokens)->default_value(16), "prompt length")(
      "new-tokens", po::value(&new_tokens)->default_value(100), "tokens generated per run")(
      "reps", po::value(&reps)->default_value(3), "timed generations per model and path")(
      "warmup", po::value(&warmup)->default_value(1), "untimed generations first")(
      "profile", "also print a per-op breakdown of a KV-cache generation per model");
  po::variables_map vm;
  if (const auto code = bench::parseOptions(argc, argv, opts, vm, "bench_generate")) return *code;
  try {
    KDGRID_INPUT_CHECK(teacher_ckpt.empty() == student_ckpt.empty(),
                       "give both --teacher and --student, or neither");
    KDGRID_INPUT_CHECK(prompt_tokens >= 1 && new_tokens >= 2 && reps >= 1,
                       "--prompt-tokens >= 1, --new-tokens >= 2, --reps >= 1");
    std::unique_ptr<BenchModel> models[2];
    if (teacher_ckpt.empty()) {
      ModelConfig t;
      t.n_layer = 4;
      t.d_model = 256;
      t.n_head = 4;
      t.d_ff = 1024;
      t.vocab_size = 4096;
      t.max_seq = 128;
      ModelConfig s = t;
      s.n_layer = 2;
      s.d_model = 128;
      s.d_ff = 512;
      models[0] = randomModel("teacher", t);
      models[1] = randomModel("student", s);
    } else {
      models[0] = loadedModel("teacher", teacher_ckpt);
      models[1] = loadedModel("student", student_ckpt);
    }
    KDGRID_INPUT_CHECK(
        stageOf(*models[0]).config().vocab_size == stageOf(*models[1]).config().vocab_size,
        "--teacher and --student have different vocabularies ({} and {})",
        stageOf(*models[0]).config().vocab_size, stageOf(*models[1]).config().vocab_size);
    std::mt19937_64 rng(1);
    std::vector<uint32_t> prompt(prompt_tokens);
    const int64_t vocab = stageOf(*models[0]).config().vocab_size;
    for (auto& id : prompt) id = static_cast<uint32_t>(rng() % vocab);
    std::printf("generation: prompt %d tokens, %d new tokens per run, %d repeats, %d threads\n",
                prompt_tokens, new_tokens, reps, omp_get_max_threads());
    for (auto& m : models)
      std::printf("  %s: %s (%s)\n", m->name.c_str(), stageOf(*m).config().summary().c_str(),
                  m->source.c_str());
    const int64_t max_seq =
        std::min(stageOf(*models[0]).config().max_seq, stageOf(*models[1]).config().max_seq);
    if (prompt_tokens + new_tokens > max_seq)
      std::printf("  note: %d tokens exceed max_seq %lld; past it every token is a prefill\n",
                  prompt_tokens + new_tokens, static_cast<long long>(max_seq));

    // runs[model][path]: path 0 = KV cache, 1 = recompute.
    const DecodePath paths[2] = {DecodePath::kKvCache, DecodePath::kRecompute};
    Timings runs[2][2];
    for (int r = 0; r < warmup + reps; ++r) {
      for (int k = 0; k < 4; ++k) {
        const int which = (r + k) % 4, mi = which / 2, pi = which % 2;
        Timings scratch;
        generateTimed(stageOf(*models[mi]), paths[pi], prompt, new_tokens,
                      r < warmup ? scratch : runs[mi][pi]);
      }
    }
    double median_s[2][2];
    std::printf("\n  %-8s %-10s %10s %12s %12s %12s\n", "model", "path", "tokens/s",
                "median ms", "p90 ms", "prefill ms");
    for (int mi = 0; mi < 2; ++mi)
      for (int pi = 0; pi < 2; ++pi) {
        const Timings& t = runs[mi][pi];
        double total = 0;
        for (double s : t.token_s) total += s;
        median_s[mi][pi] = bench::median(t.token_s);
        std::printf("  %-8s %-10s %10.1f %12.3f %12.3f %12.3f\n", models[mi]->name.c_str(),
                    pi == 0 ? "kv-cache" : "recompute", t.token_s.size() / total,
                    median_s[mi][pi] * 1e3, bench::quantile(t.token_s, 0.9) * 1e3,
                    bench::median(t.prefill_s) * 1e3);
      }
    std::printf("\nratios of median per-token latency:\n");
    std::printf("  student/teacher speedup (kv-cache):  %.2fx\n", median_s[0][0] / median_s[1][0]);
    std::printf("  student/teacher speedup (recompute): %.2fx\n", median_s[0][1] / median_s[1][1]);
    for (int mi = 0; mi < 2; ++mi)
      std::printf("  kv-cache/recompute speedup, %s: %.2fx\n", models[mi]->name.c_str(),
                  median_s[mi][1] / median_s[mi][0]);
    // Where a KV-cache decode step goes: one more generation per model with op timers.
    for (int mi = 0; mi < 2 && vm.count("profile"); ++mi) {
      OpProfile profile;
      models[mi]->rt.profile = &profile;
      Timings t;
      generateTimed(stageOf(*models[mi]), DecodePath::kKvCache, prompt, new_tokens, t);
      models[mi]->rt.profile = nullptr;
      double total = 0;
      for (double s : t.token_s) total += s;
      total += t.prefill_s.front();
      std::printf("\n%s, kv-cache, per-op over one generation (prefill + %d steps; %%: of it):\n",
                  models[mi]->name.c_str(), new_tokens - 1);
      bench::printOpProfile(profile, 1, total);
    }
  } catch (const UsageError& e) {
    std::fprintf(stderr, "bench_generate: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_generate: %s\n", e.what());
    return 1;
  }
  return 0;
}
