// RAII for MPI_Init/MPI_Finalize. Every subcommand runs inside one, so any of them works
// under mpirun.
#pragma once

namespace kdgrid {

class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  // Ends the job on every rank with `exit_code` (MPI_Abort when several ranks run).
  [[noreturn]] static void abortAll(int exit_code);
};

}  // namespace kdgrid
