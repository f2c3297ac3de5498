#include "src/core/mpi_session.h"

#include <mpi.h>

#include <cstdio>
#include <cstdlib>

#include "src/core/check.h"
#include "src/core/log.h"

namespace kdgrid {
namespace {
int g_rank = 0;  // set once in MpiSession, read by logging
int g_size = 1;
}  // namespace

int worldRank() { return g_rank; }
int worldSize() { return g_size; }

void writeLogLine(const std::string& line) {
  // One fwrite per line so lines from threads do not interleave mid-line.
  std::string text = line;
  text.push_back('\n');
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
}

MpiSession::MpiSession(int* argc, char*** argv) {
  // FUNNELED: helper threads (data prefetch) never call MPI.
  int provided = 0;
  MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
  // Return codes instead of aborting inside MPI, so KDGRID_MPI can name the failed call.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
}

MpiSession::~MpiSession() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void MpiSession::abortAll(int exit_code) {
  std::fflush(stdout);
  std::fflush(stderr);
  if (g_size > 1) MPI_Abort(MPI_COMM_WORLD, exit_code);
  MPI_Finalize();
  std::exit(exit_code);
}

}  // namespace kdgrid
