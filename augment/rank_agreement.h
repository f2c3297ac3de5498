// Making all ranks agree on whether a step of a data command worked.
#pragma once

#include <functional>

namespace kdgrid::augment {

// Runs `step` on this rank, then (collectively, over MPI_COMM_WORLD) makes every rank agree on
// the outcome: when some rank failed, every rank throws the error of the lowest failing rank —
// a usage error as OptionError (exit 2, reported once by rank 0, no MPI_Abort), anything else
// as Error with its exit code. `step` must not call collectives.
void agreeOnOutcome(const std::function<void()>& step);

}  // namespace kdgrid::augment
