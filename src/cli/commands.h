// The subcommands of the `kdgrid` binary. Each lives in its own file under src/cli/ and
// returns a process exit code (DESIGN section 2); errors are thrown, never printed here.
#pragma once

#include "src/core/options.h"

namespace kdgrid {

int runVersion(const CommandLine& cmd);
int runSampleCorpus(const CommandLine& cmd);
int runTokenizer(const CommandLine& cmd);
int runPrepare(const CommandLine& cmd);
int runAugment(const CommandLine& cmd);
int runTrain(const CommandLine& cmd);
int runEval(const CommandLine& cmd);
int runGenerate(const CommandLine& cmd);
int runTeacherLogits(const CommandLine& cmd);
int runDistill(const CommandLine& cmd);
int runPlot(const CommandLine& cmd);
int runCkpt(const CommandLine& cmd);
int runExport(const CommandLine& cmd);
int runImport(const CommandLine& cmd);

struct Command {
  const char* name;
  const char* summary;
  int (*run)(const CommandLine& cmd);
};

inline constexpr Command kCommands[] = {
    {"sample-corpus", "write the built-in English sample corpus (fortunes + WordNet glosses)",
     runSampleCorpus},
    {"tokenizer", "train a byte-level BPE tokenizer on text files; write it as JSON", runTokenizer},
    {"prepare", "text files -> text shards and token shards (train/validation split)", runPrepare},
    {"augment", "text shards -> augmented text shards (back-translation, perturbation)", runAugment},
    {"train", "train a model from scratch or resume it from its run directory", runTrain},
    {"teacher-logits", "run a teacher over token shards; write top-k logit shards (offline distillation)",
     runTeacherLogits},
    {"distill", "train a student from a teacher checkpoint (online) or top-k logit shards (offline)",
     runDistill},
    {"eval", "mean cross-entropy of a checkpoint on token shards, as one JSON line", runEval},
    {"generate", "sample text from a checkpoint", runGenerate},
    {"plot", "draw a run's metrics.jsonl (losses, lr, tokens/s) to a PNG with gnuplot", runPlot},
    {"export", "export --format hf: a checkpoint -> Hugging Face GPT-2 (config.json + model.safetensors)",
     runExport},
    {"import", "import --from hf DIR: Hugging Face GPT-2 -> a kdgrid checkpoint and tokenizer",
     runImport},
    {"ckpt", "ckpt inspect CKPT: a checkpoint's metadata and tensors, checksums verified", runCkpt},
    {"version", "print the version and how this binary was built", runVersion},
};

}  // namespace kdgrid
