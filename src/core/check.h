// Errors and check macros. Checks throw; `main` catches, prints once and aborts all ranks.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace kdgrid {

// Process exit codes (DESIGN section 2).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;    // usage, configuration or input-data error
inline constexpr int kExitStopped = 75; // stopped on a signal after a checkpoint (resumable)

// An error with the exit code it maps to. `on_every_rank` marks an error that every rank
// raises with the same message at the same point (an option check, a verdict agreed through a
// collective): main reports it once and all ranks exit cleanly, without MPI_Abort.
class Error : public std::runtime_error {
 public:
  Error(int exit_code, const std::string& message, bool on_every_rank = false)
      : std::runtime_error(message), exit_code_(exit_code), on_every_rank_(on_every_rank) {}
  int exitCode() const { return exit_code_; }
  bool onEveryRank() const { return on_every_rank_; }

 private:
  int exit_code_;
  bool on_every_rank_;
};

// A usage, configuration or input-data error (exit 2). The message names the option, file or
// dataset.
class UsageError : public Error {
 public:
  explicit UsageError(const std::string& message, bool on_every_rank = false)
      : Error(kExitUsage, message, on_every_rank) {}
};

// "[rank 3 (dp 1, pp 0, tp 1) host node07]" — filled from MPI and the grid when known.
std::string whereAmI();

// Called by ProcessGrid once coordinates are known, so error messages carry them.
void setGridCoordinates(const std::string& coords);

[[noreturn]] void throwCheckFailure(int exit_code, const char* expr, const char* file, int line,
                                    const std::string& message);

}  // namespace kdgrid

// KDGRID_CHECK(cond, fmt, args...): internal invariant or environment failure, exit 1.
#define KDGRID_CHECK(cond, ...)                                                                  \
  do {                                                                                           \
    if (!(cond)) [[unlikely]]                                                                    \
      ::kdgrid::throwCheckFailure(::kdgrid::kExitFailure, #cond, __FILE__, __LINE__,             \
                                  ::fmt::format(__VA_ARGS__));                                   \
  } while (0)

// KDGRID_INPUT_CHECK(cond, fmt, args...): bad user input (option, file, dataset), exit 2.
// The message must name the offending option, file or dataset.
#define KDGRID_INPUT_CHECK(cond, ...)                                                            \
  do {                                                                                           \
    if (!(cond)) [[unlikely]]                                                                    \
      throw ::kdgrid::UsageError(::fmt::format(__VA_ARGS__));                                   \
  } while (0)

// KDGRID_MPI(call): an MPI call that must return MPI_SUCCESS.
#define KDGRID_MPI(call)                                                                         \
  do {                                                                                           \
    int kdgrid_mpi_rc_ = (call);                                                                 \
    if (kdgrid_mpi_rc_ != MPI_SUCCESS) [[unlikely]]                                              \
      ::kdgrid::throwCheckFailure(::kdgrid::kExitFailure, #call, __FILE__, __LINE__,             \
                                  ::kdgrid::mpiErrorString(kdgrid_mpi_rc_));                     \
  } while (0)

namespace kdgrid {
std::string mpiErrorString(int rc);
}
