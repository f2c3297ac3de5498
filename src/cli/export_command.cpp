// kdgrid export --format hf: a kdgrid checkpoint -> a Hugging Face GPT-2 model directory
// (config.json, model.safetensors, vocab.json, merges.txt, tokenizer config) that
// transformers' GPT2LMHeadModel / GPT2TokenizerFast load with from_pretrained.
#include <fmt/format.h>

#include <vector>

#include "checkpoints/checkpoint.h"
#include "data/tokenizer.h"
#include "src/cli/commands.h"
#include "src/core/log.h"
#include "src/inference/model_checkpoint.h"
#include "src/interchange/hf_gpt2.h"
#include "src/model/params.h"

namespace kdgrid {

int runExport(const CommandLine& cmd) {
  std::string format, checkpoint, tokenizer_path, out;
  po::options_description options("Export");
  options.add_options()("format", po::value(&format)->value_name("hf"),
                        "target layout: hf (Hugging Face GPT-2)")(
      "checkpoint", po::value(&checkpoint)->value_name("CKPT"), "step directory or run directory")(
      "tokenizer", po::value(&tokenizer_path)->value_name("FILE"),
      "the kdgrid tokenizer JSON the model's shards were made with (its SHA-256 must match the "
      "checkpoint's tokenizer_sha256)")("out", po::value(&out)->value_name("DIR"),
                                        "output directory (created)");
  po::variables_map vm;
  if (!parseOptions(cmd, options, vm)) return kExitOk;
  KDGRID_OPTION_CHECK(format == "hf", "--format must be hf (got '{}')", format);
  KDGRID_OPTION_CHECK(!checkpoint.empty(), "--checkpoint is required");
  KDGRID_OPTION_CHECK(!tokenizer_path.empty(), "--tokenizer is required");
  KDGRID_OPTION_CHECK(!out.empty(), "--out is required");

  const Tokenizer tokenizer = Tokenizer::load(tokenizer_path);
  // Verifies every dataset's checksum (a damaged step directory exits 2 naming the dataset).
  const std::optional<std::string> dir = resolveCheckpoint(checkpoint);
  KDGRID_INPUT_CHECK(dir.has_value(), "--checkpoint {}: no checkpoint found", checkpoint);
  const CheckpointMeta meta = readCheckpointMeta(*dir);
  const ModelConfig model = checkpointModel(meta, *dir);
  KDGRID_INPUT_CHECK(tokenizer.sha256() == meta.tokenizer_sha256,
                     "--tokenizer {}: SHA-256 {} is not the checkpoint's tokenizer_sha256 {} "
                     "({}): give the tokenizer its training shards were prepared with",
                     tokenizer_path, tokenizer.sha256(), meta.tokenizer_sha256, *dir);

  if (model.attn_window != 0) {
    throw UsageError(fmt::format("--checkpoint {}: the model uses a sliding attention window "
                                 "(attn_window {}); transformers' GPT-2 attends to the whole "
                                 "causal context, so an export would compute something else",
                                 *dir, model.attn_window),
                     /*on_every_rank=*/true);
  }
  // Every rank reads the whole model as one unsharded stage; rank 0 alone counts it towards
  // the checksums and writes the output.
  const ParameterLayout layout(model, /*pp=*/1, /*stage=*/0, /*tp=*/1, /*tp_rank=*/0);
  std::vector<float> flat(layout.totalElements());
  loadCheckpoint(*dir, modelTensors(layout, worldRank(), 0, 0, flat.data()));
  if (worldRank() != 0) return kExitOk;
  NamedTensors named;
  for (const LocalParam& p : layout.params()) {
    KDGRID_CHECK(p.local_rows == p.spec.rows && p.local_cols == p.spec.cols,
                 "{}: an unsharded layout must hold the whole tensor", p.spec.name);
    named[p.spec.name].assign(flat.begin() + p.offset, flat.begin() + p.offset + p.numel());
  }
  exportHfGpt2(model, named, tokenizer, out);
  log0("exported {} ({}) to {} as a Hugging Face GPT-2 model", *dir, model.summary(), out);
  return kExitOk;
}

}  // namespace kdgrid
