// `kdgrid augment`: the pipeline lives in augment/augment.h.
#include "augment/augment.h"
#include "src/cli/commands.h"

namespace kdgrid {

int runAugment(const CommandLine& cmd) {
  AugmentConfig config;
  po::variables_map vm;
  if (!parseOptions(cmd, config.describe(), vm)) return kExitOk;
  const augment::Method method = config.validate(vm);
  runAugmentation(config, method);
  return kExitOk;
}

}  // namespace kdgrid
