// When and what a training run saves (DESIGN sections 3 and 5): a checkpoint every
// --save-every steps, after the last step and on an agreed stop request; `best` marks the
// lowest validation loss; --keep-checkpoints complete ones are kept.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "checkpoints/checkpoint.h"
#include "src/core/world_collectives.h"
#include "src/model/gpt2.h"
#include "src/optim/adamw.h"
#include "src/parallel/grid.h"
#include "src/train/config.h"
#include "src/train/data_parallel.h"

namespace kdgrid {

class CheckpointPolicy {
 public:
  // `resumed_from`: the checkpoint the run started from, if any (named by lastCheckpoint()
  // until the first save).
  CheckpointPolicy(const TrainConfig& config, CheckpointMeta meta, ProcessGrid& grid,
                   Gpt2Stage& model, DataParallel& data_parallel, AdamW& optimizer,
                   const WorldCollectives& world, std::optional<std::string> resumed_from);

  // Whether step `state.step` (just completed) is saved.
  bool due(const TrainingState& state, bool stop) const;
  // Saves the model, the AdamW moments and `state` (collective); with `val_loss` lower than
  // any before, records it in state and marks the checkpoint `best`.
  void save(TrainingState& state, std::optional<double> val_loss);
  // The newest checkpoint of this run: the last save, else the one resumed from, else "none".
  std::string lastCheckpoint() const;

 private:
  const TrainConfig& config_;
  CheckpointMeta meta_;
  ProcessGrid& grid_;
  Gpt2Stage& model_;
  DataParallel& data_parallel_;
  AdamW& optimizer_;
  WorldCollectives world_;  // cheap to copy
  std::optional<std::string> resumed_from_;
  std::string last_saved_;
};

}  // namespace kdgrid
