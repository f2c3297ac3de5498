// Fault injection points for tests (STYLE: "Fault injection lives in tests"). The engine asks
// the process-wide injector at each point; the binary users run never installs one, so every
// point is a null check there. Only the test executable (tests/kdgrid_test_main.cpp, built as
// build/kdgrid-test) installs an implementation, before anything runs.
#pragma once

#include <cstdint>

namespace kdgrid {

class FaultInjector {
 public:
  virtual ~FaultInjector() = default;

  // Training: whether optimizer step `step` (1-based) has its loss and gradients poisoned with
  // NaN (on world rank 0; the reductions carry it to every rank), to exercise --on-nan.
  virtual bool poisonStep(int64_t /*step*/) { return false; }
  // Checkpoint save of `step`, after model.h5 is written and before optimizer.h5 is: a crash
  // here must leave the previous checkpoint intact.
  virtual void afterModelFile(int64_t /*step*/) {}
  // Checkpoint save of `step`, after both files are closed and before rank 0 publishes the
  // directory: a hang here is seen by the other ranks' watched collectives.
  virtual void beforePublish(int64_t /*step*/) {}
};

// The installed injector, null unless a test executable installed one.
FaultInjector* faultInjector();
// Installs `injector` (owned by the caller, alive until exit). Once, before MPI starts.
void installFaultInjector(FaultInjector* injector);

}  // namespace kdgrid
