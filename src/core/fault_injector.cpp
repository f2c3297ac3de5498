#include "src/core/fault_injector.h"

#include "src/core/check.h"

namespace kdgrid {
namespace {

// The one process-wide hook (null in the binary users run); set once at start.
FaultInjector* g_injector = nullptr;

}  // namespace

FaultInjector* faultInjector() { return g_injector; }

void installFaultInjector(FaultInjector* injector) {
  KDGRID_CHECK(g_injector == nullptr, "installFaultInjector: an injector is already installed");
  g_injector = injector;
}

}  // namespace kdgrid
