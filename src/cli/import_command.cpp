// kdgrid import --from hf DIR: a Hugging Face GPT-2 model directory -> a kdgrid run directory
// holding one checkpoint (step 0, AdamW moments zero) and the model's tokenizer as kdgrid JSON,
// usable by eval, generate, teacher-logits, distill --teacher, and train (fine-tuning).
#include <fmt/format.h>

#include <filesystem>
#include <vector>

#include "checkpoints/checkpoint.h"
#include "checkpoints/checkpoint_dir.h"
#include "src/cli/commands.h"
#include "src/core/log.h"
#include "src/inference/model_checkpoint.h"
#include "src/interchange/hf_gpt2.h"
#include "src/model/params.h"

namespace kdgrid {

int runImport(const CommandLine& cmd) {
  std::string from, input, out, tokenizer_out;
  po::options_description options("Import");
  options.add_options()("from", po::value(&from)->value_name("hf"),
                        "source layout: hf (Hugging Face GPT-2)")(
      "input", po::value(&input)->value_name("DIR"),
      "the model directory (config.json, model.safetensors, vocab.json, merges.txt); also "
      "accepted as the positional argument after --from hf")(
      "out", po::value(&out)->value_name("RUN_DIR"),
      "run directory to create; the checkpoint is RUN_DIR/checkpoints/step_00000000")(
      "tokenizer-out", po::value(&tokenizer_out)->value_name("FILE"),
      "where to write the kdgrid tokenizer JSON (default RUN_DIR/tokenizer.json)");
  po::positional_options_description positional;
  positional.add("input", 1);
  po::variables_map vm;
  if (!parseOptions(cmd, options, vm, &positional)) return kExitOk;
  KDGRID_OPTION_CHECK(from == "hf", "--from must be hf (got '{}')", from);
  KDGRID_OPTION_CHECK(!input.empty(), "give the model directory: kdgrid import --from hf DIR");
  KDGRID_OPTION_CHECK(!out.empty(), "--out is required");
  if (tokenizer_out.empty()) tokenizer_out = out + "/tokenizer.json";
  KDGRID_OPTION_CHECK(!std::filesystem::exists(checkpointsDir(out) + "/" + kLatestFile),
                      "--out {}: already holds checkpoints; import into a new run directory", out);

  // Every rank reads the model (small next to training); the checkpoint writer is collective
  // and rank 0 writes every tensor.
  HfGpt2Model hf = importHfGpt2(input);
  hf.config.validate();
  const ParameterLayout layout(hf.config, /*pp=*/1, /*stage=*/0, /*tp=*/1, /*tp_rank=*/0);
  std::vector<float> flat(layout.totalElements());
  for (const LocalParam& p : layout.params()) {
    const std::vector<float>& v = hf.tensors.at(p.spec.name);
    KDGRID_CHECK(static_cast<int64_t>(v.size()) == p.numel(), "{}: size mismatch", p.spec.name);
    std::copy(v.begin(), v.end(), flat.begin() + p.offset);
  }
  // Zero AdamW moments are exactly the state of an optimizer that has taken no step, so `train`
  // can continue from the import (fine-tuning) as from any checkpoint.
  std::vector<float> m(flat.size(), 0.0f), v(flat.size(), 0.0f);
  const RankTensors tensors =
      modelTensors(layout, worldRank(), 0, 0, flat.data(), m.data(), v.data());
  const ModelConfig& c = hf.config;
  CheckpointMeta meta = checkpointMeta(c, "1,1,1", "", hf.tokenizer.sha256());
  meta.config_ini = fmt::format(
      "# imported from Hugging Face GPT-2 directory {}\nn-layer = {}\nn-head = {}\nd-model = {}\n"
      "d-ff = {}\nvocab-size = {}\nmax-seq = {}\nattn-window = 0\n",
      input, c.n_layer, c.n_head, c.d_model, c.d_ff, c.vocab_size, c.max_seq);
  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  KDGRID_INPUT_CHECK(!ec, "--out {}: cannot create the directory: {}", out, ec.message());
  const std::string step_dir = saveCheckpoint(out, meta, TrainingState{}, tensors, /*keep=*/0);
  if (worldRank() == 0) {
    hf.tokenizer.save(tokenizer_out);
    log0("imported {} ({}) as {}; tokenizer {} (sha256 {})", input, c.summary(), step_dir,
         tokenizer_out, meta.tokenizer_sha256);
  }
  return kExitOk;
}

}  // namespace kdgrid
