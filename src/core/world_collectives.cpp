#include "src/core/world_collectives.h"

#include "src/core/check.h"

namespace kdgrid {
namespace {

size_t typeBytes(MPI_Datatype type, int n) {
  int size = 0;
  KDGRID_MPI(MPI_Type_size(type, &size));
  return static_cast<size_t>(size) * static_cast<size_t>(n);
}

}  // namespace

WorldCollectives::WorldCollectives(CollectiveWaiter* waiter) : waiter_(waiter) {
  if (!waiter_) return;
  int same = MPI_UNEQUAL;
  KDGRID_MPI(MPI_Comm_compare(waiter_->watchedComm(), MPI_COMM_WORLD, &same));
  KDGRID_CHECK(same == MPI_IDENT, "WorldCollectives: the waiter does not watch MPI_COMM_WORLD");
}

void WorldCollectives::allReduce(void* data, int n, MPI_Datatype type, MPI_Op op,
                                 const char* what) const {
  allReduce(MPI_IN_PLACE, data, n, type, op, what);
}

void WorldCollectives::allReduce(const void* send, void* recv, int n, MPI_Datatype type,
                                 MPI_Op op, const char* what) const {
  if (!waiter_) {
    KDGRID_MPI(MPI_Allreduce(send, recv, n, type, op, MPI_COMM_WORLD));
    return;
  }
  MPI_Request request;
  KDGRID_MPI(MPI_Iallreduce(send, recv, n, type, op, MPI_COMM_WORLD, &request));
  waiter_->waitCollective(request, what, typeBytes(type, n), "bytes");
}

void WorldCollectives::broadcast(void* data, int n, MPI_Datatype type, int root) const {
  if (!waiter_) {
    KDGRID_MPI(MPI_Bcast(data, n, type, root, MPI_COMM_WORLD));
    return;
  }
  MPI_Request request;
  KDGRID_MPI(MPI_Ibcast(data, n, type, root, MPI_COMM_WORLD, &request));
  waiter_->waitCollective(request, "broadcast", typeBytes(type, n), "bytes");
}

void WorldCollectives::barrier() const {
  if (!waiter_) {
    KDGRID_MPI(MPI_Barrier(MPI_COMM_WORLD));
    return;
  }
  MPI_Request request;
  KDGRID_MPI(MPI_Ibarrier(MPI_COMM_WORLD, &request));
  waiter_->waitCollective(request, "barrier", 0, "");
}

}  // namespace kdgrid
