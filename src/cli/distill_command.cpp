// kdgrid distill: train a student from a teacher checkpoint (online) or from the teacher's
// top-k shards (offline); the student's model flags and every training and grid flag as
// `train`, plus the distillation group (DESIGN sections 2, 8).
#include "src/cli/commands.h"
#include "src/distill/distill.h"
#include "src/distill/kd_config.h"
#include "src/model/config.h"
#include "src/parallel/grid.h"
#include "src/train/config.h"

namespace kdgrid {

int runDistill(const CommandLine& cmd) {
  ModelConfig model;
  TrainConfig train;
  GridConfig grid;
  DistillConfig distill;
  po::options_description options;
  options.add(modelOptions(model))
      .add(trainOptions(train))
      .add(gridOptions(grid))
      .add(distillOptions(distill));
  po::variables_map vm;
  if (!parseOptions(cmd, options, vm)) return kExitOk;
  train.validate();
  distill.validate();
  return runDistillation(train, model, grid, distill, parsedOptions(options, vm));
}

}  // namespace kdgrid
