// `kdgrid train`: the training loop over one rank's stage of the model.
#pragma once

#include <string>

#include "model/config.h"
#include "parallel/grid.h"
#include "train/config.h"

namespace kdgrid {

// Runs (or resumes) a training run. Returns kExitOk, or kExitStopped after a stop request
// was honoured with a checkpoint.
int runTraining(const TrainConfig& train, ModelConfig model, GridConfig grid_config,
                const std::string& config_ini);

}  // namespace kdgrid
