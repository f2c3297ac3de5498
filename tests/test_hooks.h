// What build/kdgrid-test adds to the program users run (src/cli/kdgrid_main.h): the test hooks,
// installed once at start by registerTestHooks(). Add further test-only registrations (a test
// compute backend, ...) there.
#pragma once

#include <cstdint>

#include "src/core/fault_injector.h"

namespace kdgrid::test {

// The fault injector of the tests, driven by the environment as the faults tests set it:
//   KDGRID_TEST_NAN_STEP=N         poisons the loss and gradients of optimizer step N (1-based)
//   KDGRID_TEST_CRASH_IN_SAVE=S    SIGKILLs every rank saving step S, between model.h5 and
//                                  optimizer.h5 (a node failure mid-save)
//   KDGRID_TEST_HANG_IN_SAVE=S:R   SIGSTOPs world rank R saving step S, after both files and
//                                  before the directory is published (a hung process)
// Unset or malformed variables inject nothing.
class EnvFaultInjector final : public FaultInjector {
 public:
  EnvFaultInjector();  // reads the variables

  bool poisonStep(int64_t step) override;
  void afterModelFile(int64_t step) override;
  void beforePublish(int64_t step) override;

 private:
  int64_t nan_step_ = 0;    // 0 = none
  int64_t crash_step_ = 0;  // 0 = none
  int64_t hang_step_ = 0;   // 0 = none
  int hang_rank_ = 0;
};

// Installs every test hook of kdgrid-test; call once at the top of main, before MPI starts.
// Installs the fault injector and registers the test-only backends (--device guarded).
void registerTestHooks();

}  // namespace kdgrid::test
