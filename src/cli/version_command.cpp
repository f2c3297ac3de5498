#include <cstdio>

#include "src/cli/commands.h"
#include "src/core/log.h"

namespace kdgrid {

int runVersion(const CommandLine& cmd) {
  po::options_description none("version");
  po::variables_map vm;
  if (!parseOptions(cmd, none, vm)) return kExitOk;
  if (worldRank() == 0) {
    // What this binary computes with: the CPU kernels (kernels/cpu/) only. There is no CUDA
    // code yet, whether or not nvcc was found at configure time, so none is claimed.
    std::printf("kdgrid %s (%s build; backends: cpu; -march=%s; oneDNN %s)\n", KDGRID_VERSION,
                KDGRID_BUILD_TYPE, KDGRID_MARCH, KDGRID_DNNL_VERSION);
  }
  return kExitOk;
}

}  // namespace kdgrid
