// main() for every GoogleTest binary. MPI is initialised so multi-rank suites can run under
// mpirun; only rank 0 prints, and every rank exits with the same verdict (the number of
// failed tests is all-reduced), so CI never passes on one rank's say-so.
#include <gtest/gtest.h>
#include <mpi.h>

#include "src/core/mpi_session.h"

int main(int argc, char** argv) {
  kdgrid::MpiSession mpi(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int local_failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
  int any_failed = 0;
  MPI_Allreduce(&local_failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (rank == 0 && any_failed && !local_failed) std::fprintf(stderr, "a test failed on another rank\n");
  return any_failed ? 1 : 0;
}
