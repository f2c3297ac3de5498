// Resuming safely (DESIGN section 3): a run that resumes from a checkpoint continues that
// checkpoint's model and seed. The command line may repeat them, but not change them; what it
// leaves out is taken from the checkpoint.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "checkpoints/checkpoint.h"
#include "src/core/options.h"
#include "src/core/world_collectives.h"
#include "src/model/config.h"

namespace kdgrid {

// Collective over MPI_COMM_WORLD: the checkpoints a run in `run_dir` may resume from, `latest`
// first (findCheckpoints: nothing read yet; the load verifies and falls back, loadFirstIntact),
// or nullopt with --no-resume, when the run directory does not exist yet or holds no
// checkpoint. The same answer on every rank: rank 0 looks at the file system. `world`: the
// grid's watched collectives.
std::optional<CheckpointCandidates> resumeCandidates(const std::string& run_dir, bool no_resume,
                                                     const WorldCollectives& world);

// Reconciles the command line with `step_dir`, the checkpoint a run resumes from.
//
// Each /model attribute of the checkpoint is set by the option of its name with '_' -> '-'
// (d_model: --d-model), whatever the model family. Given (on the command line or in --config)
// with another value than the checkpoint's: OptionError naming the flag, both values and the
// checkpoint ("--d-model 128 differs from the checkpoint's d_model 64 (RUN/checkpoints/
// step_00000010)"; every conflict in one message). Left out: the checkpoint's value. An
// attribute no option sets (architecture) must equal what `model` writes (modelAttributes).
// --seed is checked and taken the same way from the `seed` line of the checkpoint's `config`
// (a checkpoint without one, such as `kdgrid import`'s, keeps the command line's seed).
//
// `model`: the command line's, resolved against the shards (ModelConfig::resolve), so that
// defaults such as d_ff = 0 compare as the value they stand for. On return `model` and `seed`
// are the run's, and `options.ini` shows them. A plain read of the checkpoint's metadata: every
// rank reads the same file and reaches the same verdict.
void adoptCheckpointConfig(const std::string& step_dir, ModelConfig& model, uint64_t& seed,
                           ParsedOptions& options);

}  // namespace kdgrid
