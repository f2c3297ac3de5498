#include <cstdio>

#include "src/cli/commands.h"
#include "src/core/log.h"

namespace kdgrid {

int runVersion(const CommandLine& cmd) {
  po::options_description none("version");
  po::variables_map vm;
  if (!parseOptions(cmd, none, vm)) return kExitOk;
  if (worldRank() == 0) {
    std::printf("kdgrid %s (%s build; CUDA toolchain %s; oneDNN %s)\n", KDGRID_VERSION,
                KDGRID_BUILD_TYPE, KDGRID_WITH_CUDA ? "enabled" : "off",
                KDGRID_DNNL_VERSION);
  }
  return kExitOk;
}

}  // namespace kdgrid
