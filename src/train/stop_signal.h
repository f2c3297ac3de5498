// Stop requests (DESIGN section 3): SIGUSR1, and SIGINT/SIGTERM received directly, ask the
// run to finish the current step, save a checkpoint and exit 75.
#pragma once

namespace kdgrid {

// Installs the handlers (idempotent).
void installStopHandlers();
// True once a stop signal arrived on this process. Ranks agree by all-reducing it each step.
bool stopRequested();
// Signal number of the first stop request (0 if none), for the log.
int stopSignal();

}  // namespace kdgrid
