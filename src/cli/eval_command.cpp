// kdgrid eval: mean cross-entropy of a checkpoint over token shards, as ONE JSON line on
// stdout (DESIGN section 2); with --teacher also kl_to_teacher and top1_agreement.
#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "data/token_stream.h"
#include "src/cli/commands.h"
#include "src/core/log.h"
#include "src/distill/teacher.h"
#include "src/distill/teacher_eval.h"
#include "src/inference/inference_model.h"
#include "src/parallel/grid.h"
#include "src/tensor/backends.h"
#include "src/train/evaluate.h"

namespace kdgrid {

int runEval(const CommandLine& cmd) {
  std::string checkpoint, data, teacher;
  int64_t max_tokens = 0;
  int batch_size = 8;
  GridConfig grid_config;
  po::options_description options("Evaluation");
  options.add_options()
    ("checkpoint", po::value(&checkpoint)->value_name("CKPT"), "step directory or run directory")
    ("data", po::value(&data)->value_name("DIR"), "token shards to score")
    ("max-tokens", po::value(&max_tokens)->default_value(max_tokens), "stop after N target tokens (0 = all)")
    ("batch-size", po::value(&batch_size)->default_value(batch_size), "windows per forward pass per data-parallel rank")
    ("teacher", po::value(&teacher)->value_name("CKPT"),
     "also report kl_to_teacher (KL(teacher || model) at T = 1, nats/token) and top1_agreement");
  options.add(gridOptions(grid_config));
  po::variables_map vm;
  if (!parseOptions(cmd, options, vm)) return kExitOk;
  KDGRID_OPTION_CHECK(!checkpoint.empty(), "--checkpoint is required");
  KDGRID_OPTION_CHECK(!data.empty(), "--data is required");
  KDGRID_OPTION_CHECK(max_tokens >= 0, "--max-tokens must be >= 0");
  KDGRID_OPTION_CHECK(batch_size >= 1, "--batch-size must be >= 1");

  Runtime rt(backendNamed(grid_config.device));
  InferenceModel m = loadInferenceModel(checkpoint, grid_config, rt);
  TokenStream stream(data);
  KDGRID_INPUT_CHECK(stream.vocabSize() <= static_cast<uint32_t>(m.config.vocab_size),
                     "--data {}: vocab_size {} exceeds the model's {}", data, stream.vocabSize(),
                     m.config.vocab_size);
  if (stream.tokenizerSha256() != m.meta.tokenizer_sha256) {
    log0("warning: --data {} was tokenized with another tokenizer than the checkpoint's", data);
  }
  nlohmann::json line;
  int64_t tokens = 0;
  if (teacher.empty()) {
    const EvalResult r = evaluateLoss(*m.model, *m.grid, stream, max_tokens, batch_size);
    line = {{"loss", r.loss}, {"ppl", std::exp(r.loss)}, {"tokens", r.tokens}};
    tokens = r.tokens;
  } else {
    // The teacher must score the same ids: the student checkpoint's tokenizer and vocabulary.
    Teacher t = findTeacher(teacher, "--teacher");
    loadTeacher(t, "--teacher", *m.grid, DType::kF32, rt, &m.config,
                "--checkpoint " + checkpoint, m.meta.tokenizer_sha256);
    const TeacherEvalResult r =
        evaluateAgainstTeacher(*m.model, *t.stage, *m.grid, stream, max_tokens, batch_size);
    line = {{"loss", r.loss},
            {"ppl", std::exp(r.loss)},
            {"tokens", r.tokens},
            {"kl_to_teacher", r.kl_to_teacher},
            {"top1_agreement", r.top1_agreement}};
    tokens = r.tokens;
  }
  KDGRID_INPUT_CHECK(tokens > 0, "--data {}: fewer than max_seq + 1 = {} tokens, nothing to score",
                     data, m.config.max_seq + 1);
  if (worldRank() == 0) std::printf("%s\n", line.dump().c_str());
  return kExitOk;
}

}  // namespace kdgrid
