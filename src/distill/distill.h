// `kdgrid distill`: the training loop (runTraining) with a distillation loss head.
#pragma once

#include <string>

#include "src/distill/kd_config.h"
#include "src/model/config.h"
#include "src/parallel/grid.h"
#include "src/train/config.h"

namespace kdgrid {

// Online (--teacher) or offline (--teacher-logits) distillation of the student described by
// `model` on `train`'s data. Returns as runTraining. The teacher is checked against the data
// and the student (tokenizer, vocabulary; exit 2) once the run is set up. A resumed student is
// its checkpoint's, as in runTraining.
int runDistillation(const TrainConfig& train, const ModelConfig& model, const GridConfig& grid,
                    const DistillConfig& distill, const ParsedOptions& options);

}  // namespace kdgrid
