#include "src/core/check.h"

#include <mpi.h>
#include <unistd.h>

#include <mutex>

namespace kdgrid {
namespace {
std::mutex g_coords_mutex;
std::string g_coords;  // written once by ProcessGrid; read only when formatting an error
}  // namespace

void setGridCoordinates(const std::string& coords) {
  std::lock_guard<std::mutex> lock(g_coords_mutex);
  g_coords = coords;
}

std::string whereAmI() {
  std::string where;
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) {
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    where = fmt::format("rank {}", rank);
  } else {
    where = "rank ?";
  }
  {
    std::lock_guard<std::mutex> lock(g_coords_mutex);
    if (!g_coords.empty()) where += " (" + g_coords + ")";
  }
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) == 0) where += fmt::format(" host {}", host);
  return where;
}

void throwCheckFailure(int exit_code, const char* expr, const char* file, int line,
                       const std::string& message) {
  throw Error(exit_code, fmt::format("{}\n  check failed: {}\n  at {}:{} [{}]", message, expr,
                                     file, line, whereAmI()));
}

std::string mpiErrorString(int rc) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  return fmt::format("MPI error {}: {}", rc, std::string(text, len));
}

}  // namespace kdgrid
