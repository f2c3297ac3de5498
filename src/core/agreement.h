// Making every rank of MPI_COMM_WORLD reach the same verdict, so an error (a damaged checkpoint,
// a bad input shard found by one rank) is thrown on all ranks with the same text, and no rank
// is left waiting in a collective. Each function takes the WorldCollectives to run its
// collectives with (default: plain blocking MPI; the process grid's watched ones where a grid
// exists, so that a hung rank is named: core/world_collectives.h).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "src/core/world_collectives.h"

namespace kdgrid {

// A problem one rank found; `order` ranks problems (lower = reported first).
struct Failure {
  int order = 0;
  std::string message;
};

// Collective: the failure with the lowest order over all ranks (ties: the lowest rank), or
// nullopt when no rank has one. Every rank gets the same result.
std::optional<Failure> firstFailure(const std::optional<Failure>& local,
                                    const WorldCollectives& world = {});

// Collective: `text` as rank `root` has it.
std::string broadcastString(const std::string& text, int root,
                            const WorldCollectives& world = {});

// Collective: `texts` as rank `root` has them.
std::vector<std::string> broadcastStrings(const std::vector<std::string>& texts, int root,
                                          const WorldCollectives& world = {});

// Collective: runs `step` on every rank, then makes all ranks agree on the outcome: when some
// rank failed, every rank throws the lowest failing rank's error (same exit code and message,
// marked on_every_rank: reported once, no MPI_Abort). `step` must not call collectives.
void agreeOnOutcome(const std::function<void()>& step, const WorldCollectives& world = {});

// Collective: runs `fn` on rank 0 only; if it throws, every rank throws the same kind of error
// (UsageError, or Error with rank 0's exit code) with rank 0's message.
void runOnRankZero(const std::function<void()>& fn, const WorldCollectives& world = {});

}  // namespace kdgrid
