#include "tests/test_hooks.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "kernels/guarded/guarded_backend.h"
#include "src/core/log.h"
#include "src/tensor/backends.h"

namespace kdgrid::test {

EnvFaultInjector::EnvFaultInjector() {
  if (const char* value = std::getenv("KDGRID_TEST_NAN_STEP")) nan_step_ = std::atoll(value);
  if (const char* value = std::getenv("KDGRID_TEST_CRASH_IN_SAVE")) crash_step_ = std::atoll(value);
  if (const char* value = std::getenv("KDGRID_TEST_HANG_IN_SAVE")) {
    long long step = 0;
    int rank = 0;
    if (std::sscanf(value, "%lld:%d", &step, &rank) == 2) {
      hang_step_ = step;
      hang_rank_ = rank;
    }
  }
}

bool EnvFaultInjector::poisonStep(int64_t step) { return nan_step_ != 0 && step == nan_step_; }

void EnvFaultInjector::afterModelFile(int64_t step) {
  if (crash_step_ == 0 || step != crash_step_) return;
  logRank("KDGRID_TEST_CRASH_IN_SAVE={}: killing this rank in the middle of the save", step);
  std::raise(SIGKILL);
}

void EnvFaultInjector::beforePublish(int64_t step) {
  if (hang_step_ == 0 || step != hang_step_ || hang_rank_ != worldRank()) return;
  logRank("KDGRID_TEST_HANG_IN_SAVE={}:{}: stopping this rank in the middle of the save", step,
          hang_rank_);
  std::raise(SIGSTOP);
}

void registerTestHooks() {
  static EnvFaultInjector faults;  // lives until exit, as installFaultInjector requires
  installFaultInjector(&faults);
  // The guarded test device as --device guarded (kernels/guarded/guarded_backend.h): memory
  // the host code cannot touch outside the op dispatch and the staging copies.
  // KDGRID_GUARDED_POOL_MB sizes its address space (default 16384; pages are committed only as
  // they are written).
  registerBackend("guarded", [] {
    const char* mb = std::getenv("KDGRID_GUARDED_POOL_MB");
    const size_t pool_mb = mb ? std::strtoull(mb, nullptr, 10) : 16384;
    return std::make_unique<guarded::GuardedBackend>(pool_mb << 20);
  });
}

}  // namespace kdgrid::test
