#include "checkpoints/agreement.h"

#include <mpi.h>

#include <climits>
#include <cstdint>

#include "core/check.h"

namespace kdgrid {

namespace {

int rankInWorld() {
  int rank = 0;
  KDGRID_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
  return rank;
}

}  // namespace

std::string broadcastString(const std::string& text, int root) {
  uint64_t size = text.size();
  KDGRID_MPI(MPI_Bcast(&size, 1, MPI_UINT64_T, root, MPI_COMM_WORLD));
  std::string out = rankInWorld() == root ? text : std::string(size, '\0');
  if (size > 0) {
    KDGRID_CHECK(size <= static_cast<uint64_t>(INT_MAX), "broadcast of {} bytes is too large",
                 size);
    KDGRID_MPI(MPI_Bcast(out.data(), static_cast<int>(size), MPI_CHAR, root, MPI_COMM_WORLD));
  }
  return out;
}

std::vector<std::string> broadcastStrings(const std::vector<std::string>& texts, int root) {
  uint64_t count = texts.size();
  KDGRID_MPI(MPI_Bcast(&count, 1, MPI_UINT64_T, root, MPI_COMM_WORLD));
  const bool is_root = rankInWorld() == root;
  std::vector<std::string> out;
  for (uint64_t i = 0; i < count; ++i)
    out.push_back(broadcastString(is_root ? texts[i] : std::string(), root));
  return out;
}

std::optional<Failure> firstFailure(const std::optional<Failure>& local) {
  struct {
    int order;
    int rank;
  } mine{local ? local->order : INT_MAX, rankInWorld()}, first{};
  KDGRID_CHECK(!local || local->order < INT_MAX, "failure order {} is reserved", local->order);
  KDGRID_MPI(MPI_Allreduce(&mine, &first, 1, MPI_2INT, MPI_MINLOC, MPI_COMM_WORLD));
  if (first.order == INT_MAX) return std::nullopt;
  return Failure{first.order, broadcastString(local ? local->message : std::string(), first.rank)};
}

void runOnRankZero(const std::function<void()>& fn) {
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
  KDGRID_MPI(MPI_Bcast(&exit_code, 1, MPI_INT, 0, MPI_COMM_WORLD));
  if (exit_code == 0) return;
  message = broadcastString(message, 0);
  if (exit_code == kExitUsage) throw UsageError(message, /*on_every_rank=*/true);
  throw Error(exit_code, message, /*on_every_rank=*/true);
}

}  // namespace kdgrid
