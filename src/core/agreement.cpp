#include "src/core/agreement.h"

#include <mpi.h>

#include <climits>
#include <cstdint>

#include "src/core/check.h"

namespace kdgrid {

namespace {

int rankInWorld() {
  int rank = 0;
  KDGRID_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
  return rank;
}

}  // namespace

std::string broadcastString(const std::string& text, int root, const WorldCollectives& world) {
  uint64_t size = text.size();
  world.broadcast(&size, 1, MPI_UINT64_T, root);
  std::string out = rankInWorld() == root ? text : std::string(size, '\0');
  if (size > 0) {
    KDGRID_CHECK(size <= static_cast<uint64_t>(INT_MAX), "broadcast of {} bytes is too large",
                 size);
    world.broadcast(out.data(), static_cast<int>(size), MPI_CHAR, root);
  }
  return out;
}

std::vector<std::string> broadcastStrings(const std::vector<std::string>& texts, int root,
                                          const WorldCollectives& world) {
  uint64_t count = texts.size();
  world.broadcast(&count, 1, MPI_UINT64_T, root);
  const bool is_root = rankInWorld() == root;
  std::vector<std::string> out;
  for (uint64_t i = 0; i < count; ++i)
    out.push_back(broadcastString(is_root ? texts[i] : std::string(), root, world));
  return out;
}

std::optional<Failure> firstFailure(const std::optional<Failure>& local,
                                    const WorldCollectives& world) {
  struct {
    int order;
    int rank;
  } mine{local ? local->order : INT_MAX, rankInWorld()}, first{};
  KDGRID_CHECK(!local || local->order < INT_MAX, "failure order {} is reserved", local->order);
  world.allReduce(&mine, &first, 1, MPI_2INT, MPI_MINLOC, "all-reduce (first failure)");
  if (first.order == INT_MAX) return std::nullopt;
  return Failure{first.order,
                 broadcastString(local ? local->message : std::string(), first.rank, world)};
}

void agreeOnOutcome(const std::function<void()>& step, const WorldCollectives& world) {
  int code = kExitOk;
  std::string message;
  try {
    step();
  } catch (const Error& e) {
    code = e.exitCode();
    message = e.what();
  } catch (const std::exception& e) {
    code = kExitFailure;
    message = e.what();
  }
  int size = 0;
  KDGRID_MPI(MPI_Comm_size(MPI_COMM_WORLD, &size));
  int first = code == kExitOk ? size : rankInWorld();
  world.allReduce(&first, 1, MPI_INT, MPI_MIN, "all-reduce (outcome)");
  if (first == size) return;
  world.broadcast(&code, 1, MPI_INT, first);
  message = broadcastString(message, first, world);
  throw Error(code, message, /*on_every_rank=*/true);
}

void runOnRankZero(const std::function<void()>& fn, const WorldCollectives& world) {
  int exit_code = 0;
  std::string message;
  if (rankInWorld() == 0) {
    try {
      fn();
    } catch (const Error& e) {
      exit_code = e.exitCode();
      message = e.what();
    } catch (const std::exception& e) {
      exit_code = kExitFailure;
      message = e.what();
    }
  }
  world.broadcast(&exit_code, 1, MPI_INT, 0);
  if (exit_code == 0) return;
  message = broadcastString(message, 0, world);
  if (exit_code == kExitUsage) throw UsageError(message, /*on_every_rank=*/true);
  throw Error(exit_code, message, /*on_every_rank=*/true);
}

}  // namespace kdgrid
