// `kdgrid prepare`: the pipeline lives in data/prepare.h.
#include "data/prepare.h"
#include "src/cli/commands.h"

namespace kdgrid {

int runPrepare(const CommandLine& cmd) {
  PrepareConfig config;
  po::variables_map vm;
  if (!parseOptions(cmd, prepareOptions(config), vm)) return kExitOk;
  config.validate();
  prepareShards(config);
  return kExitOk;
}

}  // namespace kdgrid
