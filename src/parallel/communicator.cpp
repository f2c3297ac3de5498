#include "parallel/communicator.h"

#include <climits>

#include "core/check.h"

namespace kdgrid {
namespace {

int countAsInt(size_t n) {
  KDGRID_CHECK(n <= static_cast<size_t>(INT_MAX), "message of {} elements exceeds MPI's int count", n);
  return static_cast<int>(n);
}

}  // namespace

MpiCommunicator::MpiCommunicator(std::string axis, MPI_Comm comm)
    : Communicator(std::move(axis), 0, 1), comm_(comm) {
  KDGRID_MPI(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
  KDGRID_MPI(MPI_Comm_rank(comm_, &rank_));
  KDGRID_MPI(MPI_Comm_size(comm_, &size_));
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  // Sends still in flight mean an error unwound the step; the job is being aborted.
  if (!finalized && comm_ != MPI_COMM_WORLD && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

void MpiCommunicator::allReduce(void* data, size_t n, MPI_Datatype type, MPI_Op op,
                                size_t elem_bytes) {
  if (size_ == 1 || n == 0) return;
  KDGRID_MPI(MPI_Allreduce(MPI_IN_PLACE, data, countAsInt(n), type, op, comm_));
  bytes_sent_ += 2 * (size_ - 1) * n * elem_bytes / size_;
}

void MpiCommunicator::allReduceSum(float* d, size_t n) { allReduce(d, n, MPI_FLOAT, MPI_SUM, 4); }
void MpiCommunicator::allReduceSum(double* d, size_t n) { allReduce(d, n, MPI_DOUBLE, MPI_SUM, 8); }
void MpiCommunicator::allReduceMax(float* d, size_t n) { allReduce(d, n, MPI_FLOAT, MPI_MAX, 4); }
void MpiCommunicator::allReduceMax(int64_t* d, size_t n) { allReduce(d, n, MPI_INT64_T, MPI_MAX, 8); }

void MpiCommunicator::reduceScatterSum(const float* in, float* out, size_t n_per_rank) {
  if (size_ == 1) {
    std::copy(in, in + n_per_rank, out);
    return;
  }
  KDGRID_MPI(MPI_Reduce_scatter_block(in, out, countAsInt(n_per_rank), MPI_FLOAT, MPI_SUM, comm_));
  bytes_sent_ += (size_ - 1) * n_per_rank * 4;
}

void MpiCommunicator::allGather(const float* in, float* out, size_t n_per_rank) {
  if (size_ == 1) {
    std::copy(in, in + n_per_rank, out);
    return;
  }
  KDGRID_MPI(MPI_Allgather(in, countAsInt(n_per_rank), MPI_FLOAT, out, countAsInt(n_per_rank),
                           MPI_FLOAT, comm_));
  bytes_sent_ += (size_ - 1) * n_per_rank * 4;
}

void MpiCommunicator::broadcast(void* data, size_t bytes, int root) {
  if (size_ == 1) return;
  KDGRID_MPI(MPI_Bcast(data, countAsInt(bytes), MPI_BYTE, root, comm_));
  if (rank_ == root) bytes_sent_ += bytes;
}

void MpiCommunicator::send(const void* data, size_t bytes, int peer, int tag) {
  MPI_Request request;
  KDGRID_MPI(MPI_Isend(data, countAsInt(bytes), MPI_BYTE, peer, tag, comm_, &request));
  pending_sends_.push_back(request);
  bytes_sent_ += bytes;
}

void MpiCommunicator::waitSends() {
  if (pending_sends_.empty()) return;
  KDGRID_MPI(MPI_Waitall(static_cast<int>(pending_sends_.size()), pending_sends_.data(),
                         MPI_STATUSES_IGNORE));
  pending_sends_.clear();
}

void MpiCommunicator::recv(void* data, size_t bytes, int peer, int tag) {
  KDGRID_MPI(MPI_Recv(data, countAsInt(bytes), MPI_BYTE, peer, tag, comm_, MPI_STATUS_IGNORE));
}

void MpiCommunicator::barrier() { KDGRID_MPI(MPI_Barrier(comm_)); }

}  // namespace kdgrid
