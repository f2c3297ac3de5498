// Checkpoints (DESIGN section 5): step_NNNNNNNN/{model.h5, optimizer.h5} in
// RUN_DIR/checkpoints/, complete only once `latest` names it.
//
// Every rank writes the slabs it owns of the FULL logical tensors into the same files
// (parallel HDF5, collective I/O), and reads the slabs it needs for the grid it runs on now,
// so a checkpoint saved on one grid loads on any other. Each dataset carries a `checksum`
// attribute computed from its logical values alone (see checksum.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "data/loader.h"
#include "model/config.h"
#include "model/params.h"

namespace kdgrid {

class ProcessGrid;

// Everything besides tensors that a resumed run needs to continue exactly.
struct TrainingState {
  int64_t step = 0;          // optimizer steps completed
  int64_t tokens_seen = 0;   // global target tokens trained on
  float loss_scale = 1.0f;   // fp16 dynamic loss scale
  int64_t good_steps = 0;    // clean steps since the last scale change
  DataCursor cursor;         // the global data cursor after `step`
  double best_val_loss = 0;  // lowest validation loss so far (0 = none yet)
};

// What one rank contributes to (and takes from) a checkpoint: its parameter layout and flat
// fp32 buffers. m and v may be null (model-only loads: eval, generate, teacher).
struct RankTensors {
  const ParameterLayout* layout = nullptr;
  float* params = nullptr;  // flat over layout
  float* m = nullptr;       // AdamW first moment, flat over layout
  float* v = nullptr;       // AdamW second moment
  bool writer = false;      // this rank writes its slabs (one replica per tensor writes)
};

struct CheckpointMeta {
  ModelConfig model;
  std::string grid;              // "dp,pp,tp" at save time
  std::string config_ini;        // effective configuration
  std::string tokenizer_sha256;  // copied from the training shards
};

// Collective over MPI_COMM_WORLD. Writes RUN_DIR/checkpoints/step_NNNNNNNN.tmp/, fsyncs,
// renames, then replaces `latest` atomically; then deletes the oldest complete checkpoints
// beyond `keep` (never the one `best` names). Returns the step directory's path.
std::string saveCheckpoint(const std::string& run_dir, const CheckpointMeta& meta,
                           const TrainingState& state, const RankTensors& tensors, int keep);

// Points RUN_DIR/checkpoints/best at an existing complete step directory (rank 0 only).
void markBest(const std::string& run_dir, const std::string& step_dir);

// Resolves a CKPT argument: a step_NNNNNNNN directory as is, or a run directory's `latest`.
// Returns the chosen step directory, after verifying checksums: a named step directory
// with a bad checksum throws UsageError naming the dataset; for a run directory, a bad
// `latest` falls back to the newest intact checkpoint with a warning (UsageError when none is
// left). nullopt when a run directory has no checkpoint yet.
std::optional<std::string> resolveCheckpoint(const std::string& ckpt_or_run_dir);

// Reads metadata (root and /model attributes) without loading tensors.
CheckpointMeta readCheckpointMeta(const std::string& step_dir);

// Collective over MPI_COMM_WORLD: fills this rank's slabs (and m, v when non-null) and
// returns the training state. Throws UsageError if the model shape differs from the layout.
TrainingState loadCheckpoint(const std::string& step_dir, const RankTensors& tensors);

}  // namespace kdgrid
