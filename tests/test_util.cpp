#include "tests/test_util.h"

#include <mpi.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>

namespace kdgrid::test {

TempDir::TempDir(const std::string& tag) {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  char buf[4096] = {0};
  if (rank == 0) {
    std::string templ = (std::filesystem::temp_directory_path() / (tag + "-XXXXXX")).string();
    std::snprintf(buf, sizeof(buf), "%s", templ.c_str());
    if (!mkdtemp(buf)) std::abort();
  }
  MPI_Bcast(buf, sizeof(buf), MPI_CHAR, 0, MPI_COMM_WORLD);
  path_ = buf;
}

TempDir::~TempDir() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0 && !std::getenv("KDGRID_KEEP_TEST_DIRS")) {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
}

std::string sourceDir() {
  const char* dir = std::getenv("KDGRID_SOURCE_DIR");
  return dir ? dir : KDGRID_SOURCE_DIR_DEFAULT;
}

std::string kdgridBinary() {
  const char* bin = std::getenv("KDGRID_BIN");
  return bin ? bin : KDGRID_BIN_DEFAULT;
}

int runCommand(const std::string& command, std::string* output) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return -1;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) {
    if (output) output->append(buf.data(), n);
  }
  int status = pclose(pipe);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace kdgrid::test
