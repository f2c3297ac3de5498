// `kdgrid train`: the training loop over one rank's stage of the model.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "data/loader.h"
#include "src/model/config.h"
#include "src/model/gpt2.h"
#include "src/parallel/grid.h"
#include "src/tensor/runtime.h"
#include "src/train/config.h"
#include "src/train/loss_head.h"

namespace kdgrid {

// What a LossHead may need, once the run is set up (grid, student, data loader).
struct TrainingSetup {
  const TrainConfig& train;
  const ModelConfig& model;  // resolved (vocab_size from the shards)
  ProcessGrid& grid;
  Gpt2Stage& student;
  Runtime& rt;
  DType compute;
  const std::vector<DataSource>& sources;  // --data, parsed
  const DataLoader& loader;
};

// Builds the run's loss head; called once on every rank before the first step. May throw a
// usage error (e.g. a teacher that does not fit the student).
using LossHeadFactory = std::function<std::unique_ptr<LossHead>(TrainingSetup&)>;

// Runs (or resumes) a training run. Returns kExitOk, or kExitStopped after a stop request
// was honoured with a checkpoint. `make_head` (default: cross-entropy) selects the loss.
// `options`: the command as parsed; a resumed run takes the model and --seed the command line
// leaves out from its checkpoint, and refuses other values (src/train/resume_config.h).
int runTraining(TrainConfig train, ModelConfig model, GridConfig grid_config,
                ParsedOptions options, const LossHeadFactory& make_head = {});

}  // namespace kdgrid
