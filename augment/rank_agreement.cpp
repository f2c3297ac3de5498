#include "augment/rank_agreement.h"

#include <mpi.h>

#include <exception>
#include <string>

#include "cli/options.h"
#include "core/check.h"
#include "core/log.h"

namespace kdgrid::augment {

void agreeOnOutcome(const std::function<void()>& step) {
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
  const int world = worldSize();
  int first = code == kExitOk ? world : worldRank();
  KDGRID_MPI(MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
  if (first == world) return;
  KDGRID_MPI(MPI_Bcast(&code, 1, MPI_INT, first, MPI_COMM_WORLD));
  int length = static_cast<int>(message.size());
  KDGRID_MPI(MPI_Bcast(&length, 1, MPI_INT, first, MPI_COMM_WORLD));
  message.resize(static_cast<size_t>(length));
  KDGRID_MPI(MPI_Bcast(message.data(), length, MPI_CHAR, first, MPI_COMM_WORLD));
  if (code == kExitUsage) throw OptionError(message);
  throw Error(code, message);
}

}  // namespace kdgrid::augment
