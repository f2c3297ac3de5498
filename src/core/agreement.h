// Making every rank of MPI_COMM_WORLD reach the same verdict, so an error (a damaged checkpoint,
// a bad input shard found by one rank) is thrown on all ranks with the same text, and no rank
// is left waiting in a collective.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace kdgrid {

// A problem one rank found; `order` ranks problems (lower = reported first).
struct Failure {
  int order = 0;
  std::string message;
};

// Collective: the failure with the lowest order over all ranks (ties: the lowest rank), or
// nullopt when no rank has one. Every rank gets the same result.
std::optional<Failure> firstFailure(const std::optional<Failure>& local);

// Collective: `text` as rank `root` has it.
std::string broadcastString(const std::string& text, int root);

// Collective: `texts` as rank `root` has them.
std::vector<std::string> broadcastStrings(const std::vector<std::string>& texts, int root);

// Collective: runs `step` on every rank, then makes all ranks agree on the outcome: when some
// rank failed, every rank throws the lowest failing rank's error (same exit code and message,
// marked on_every_rank: reported once, no MPI_Abort). `step` must not call collectives.
void agreeOnOutcome(const std::function<void()>& step);

// Collective: runs `fn` on rank 0 only; if it throws, every rank throws the same kind of error
// (UsageError, or Error with rank 0's exit code) with rank 0's message.
void runOnRankZero(const std::function<void()>& fn);

}  // namespace kdgrid
