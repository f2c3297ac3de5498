#include "src/cli/commands.h"
#include "src/model/config.h"
#include "src/parallel/grid.h"
#include "src/train/config.h"
#include "src/train/trainer.h"

namespace kdgrid {

int runTrain(const CommandLine& cmd) {
  ModelConfig model;
  TrainConfig train;
  GridConfig grid;
  po::options_description options;
  options.add(modelOptions(model)).add(trainOptions(train)).add(gridOptions(grid));
  po::variables_map vm;
  if (!parseOptions(cmd, options, vm)) return kExitOk;
  train.validate();
  return runTraining(train, model, grid, parsedOptions(options, vm));
}

}  // namespace kdgrid
