// Loading a trained model for inference commands (eval, generate, and later teacher-logits
// and the online teacher): the checkpoint's metadata fixes the model, the grid is checked
// against it, and every rank reads the slices it needs.
#pragma once

#include <memory>
#include <string>

#include "checkpoints/checkpoint.h"
#include "src/inference/model_checkpoint.h"
#include "src/model/gpt2.h"
#include "src/parallel/grid.h"
#include "src/tensor/runtime.h"

namespace kdgrid {

struct InferenceModel {
  std::string step_dir;  // the checkpoint directory actually loaded
  CheckpointMeta meta;
  ModelConfig config;  // the model meta describes
  TrainingState state;
  std::unique_ptr<ProcessGrid> grid;
  std::unique_ptr<Gpt2Stage> model;
};

// `ckpt` is a step directory or a run directory (its latest intact checkpoint). Exit 2 when
// it holds no checkpoint.
InferenceModel loadInferenceModel(const std::string& ckpt, GridConfig grid_config, Runtime& rt,
                                  DType compute = DType::kF32);

}  // namespace kdgrid
