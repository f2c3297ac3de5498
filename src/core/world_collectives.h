// The collectives over MPI_COMM_WORLD that kdgrid's own coordination code makes outside the
// training step: the agreements of agreement.h and the barriers, all-reduces and broadcasts
// around checkpoint save, load and resolution (checkpoints/). By default they are MPI's
// blocking calls; given a CollectiveWaiter (the world communicator of the process grid, which
// runs the collective watchdog, parallel/communicator.h) each starts as its non-blocking
// variant and is waited for under the watchdog, so that a rank hung while the others save or
// load is detected and named instead of stalling the job forever.
//
// Limit: the collectives HDF5 makes inside parallel I/O (collective H5Fcreate/H5Fopen,
// H5Dwrite with collective transfer, H5Fclose over MPI-IO) are MPI calls of the library, not
// of kdgrid, and cannot be watched: a rank hung inside one of them stalls the others there
// until the next watched collective of a rank that got through (or forever, when none does).
#pragma once

#include <mpi.h>

#include <cstddef>

namespace kdgrid {

class CollectiveWaiter {
 public:
  virtual ~CollectiveWaiter() = default;
  // The communicator whose collectives this waiter watches (must be MPI_COMM_WORLD here).
  virtual MPI_Comm watchedComm() const = 0;
  // Waits for `request`, a non-blocking collective just started on watchedComm(): returns
  // when it completed, throws Error naming the operation and the silent ranks when it did not
  // complete in time. `what`, `count` and `unit` describe it ("barrier", 0, "").
  virtual void waitCollective(MPI_Request request, const char* what, size_t count,
                              const char* unit) = 0;
};

// Cheap to copy; holds no state but the waiter (not owned; it must outlive the copies).
class WorldCollectives {
 public:
  WorldCollectives() = default;  // plain blocking MPI calls
  // Watched by `waiter` (null: plain). Checks that it watches MPI_COMM_WORLD.
  explicit WorldCollectives(CollectiveWaiter* waiter);

  bool watched() const { return waiter_ != nullptr; }

  // In place, n elements of `type` reduced with `op` (MPI_IN_PLACE); `what` names it in a
  // watchdog message ("all-reduce (sum)").
  void allReduce(void* data, int n, MPI_Datatype type, MPI_Op op, const char* what) const;
  // send -> recv (not in place; MPI_MINLOC over MPI_2INT needs a pair).
  void allReduce(const void* send, void* recv, int n, MPI_Datatype type, MPI_Op op,
                 const char* what) const;
  void broadcast(void* data, int n, MPI_Datatype type, int root) const;
  void barrier() const;

 private:
  CollectiveWaiter* waiter_ = nullptr;
};

}  // namespace kdgrid
