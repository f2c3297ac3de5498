#include "parallel/communicator.h"

#include <algorithm>
#include <climits>

#include "core/check.h"

namespace kdgrid {
namespace {

int countAsInt(size_t n) {
  KDGRID_CHECK(n <= static_cast<size_t>(INT_MAX), "message of {} elements exceeds MPI's int count",
               n);
  return static_cast<int>(n);
}

// MPI has no 16-bit float types: bf16 and fp16 travel as MPI_UINT16_T, summed by these user
// ops (inout[i] = round(in[i] + inout[i]), the addition in fp32).
template <typename T>
void sumHalf(void* in, void* inout, int* len, MPI_Datatype* /*type*/) {
  const T* a = static_cast<const T*>(in);
  T* b = static_cast<T*>(inout);
  for (int i = 0; i < *len; ++i) b[i] = T(toFloat(a[i]) + toFloat(b[i]));
}

}  // namespace

FlatShards::FlatShards(size_t n, int parts)
    : n_(n), parts_(parts), shard_(parts > 0 ? (n + parts - 1) / parts : 0) {
  KDGRID_CHECK(parts >= 1, "FlatShards over {} parts", parts);
}

size_t FlatShards::begin(int r) const {
  return std::min(n_, size_t(r) * shard_);
}
size_t FlatShards::end(int r) const {
  return std::min(n_, size_t(r + 1) * shard_);
}

MpiCommunicator::MpiCommunicator(std::string axis, MPI_Comm comm)
    : Communicator(std::move(axis), 0, 1), comm_(comm) {
  KDGRID_MPI(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
  KDGRID_MPI(MPI_Comm_rank(comm_, &rank_));
  KDGRID_MPI(MPI_Comm_size(comm_, &size_));
  KDGRID_MPI(MPI_Op_create(&sumHalf<bf16>, /*commute=*/1, &sum_bf16_));
  KDGRID_MPI(MPI_Op_create(&sumHalf<f16>, /*commute=*/1, &sum_f16_));
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  if (sum_bf16_ != MPI_OP_NULL) MPI_Op_free(&sum_bf16_);
  if (sum_f16_ != MPI_OP_NULL) MPI_Op_free(&sum_f16_);
  // Sends still in flight mean an error unwound the step; the job is being aborted.
  if (comm_ != MPI_COMM_WORLD && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

void MpiCommunicator::allReduce(void* data, size_t n, MPI_Datatype type, MPI_Op op,
                                size_t elem_bytes) {
  if (size_ == 1 || n == 0) return;
  KDGRID_MPI(MPI_Allreduce(MPI_IN_PLACE, data, countAsInt(n), type, op, comm_));
  bytes_sent_ += 2 * (size_ - 1) * n * elem_bytes / size_;
}

void MpiCommunicator::allReduceSum(float* d, size_t n) {
  allReduce(d, n, MPI_FLOAT, MPI_SUM, 4);
}
void MpiCommunicator::allReduceSum(double* d, size_t n) {
  allReduce(d, n, MPI_DOUBLE, MPI_SUM, 8);
}
void MpiCommunicator::allReduceSum(void* d, size_t n, DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return allReduce(d, n, MPI_FLOAT, MPI_SUM, 4);
    case DType::kBF16:
      return allReduce(d, n, MPI_UINT16_T, sum_bf16_, 2);
    case DType::kF16:
      return allReduce(d, n, MPI_UINT16_T, sum_f16_, 2);
  }
}
void MpiCommunicator::allReduceMax(float* d, size_t n) {
  allReduce(d, n, MPI_FLOAT, MPI_MAX, 4);
}
void MpiCommunicator::allReduceMax(int64_t* d, size_t n) {
  allReduce(d, n, MPI_INT64_T, MPI_MAX, 8);
}

void MpiCommunicator::shardCounts(const FlatShards& shards, std::vector<int>& counts,
                                  std::vector<int>& displs) const {
  KDGRID_CHECK(shards.parts() == size_, "{} shards over the {} ranks of axis {}", shards.parts(),
               size_, axis_);
  countAsInt(shards.total());
  counts.resize(size_);
  displs.resize(size_);
  for (int r = 0; r < size_; ++r) {
    counts[r] = static_cast<int>(shards.size(r));
    displs[r] = static_cast<int>(shards.begin(r));
  }
}

void MpiCommunicator::reduceScatterSum(const float* in, float* out, const FlatShards& shards) {
  std::vector<int> counts, displs;
  shardCounts(shards, counts, displs);
  if (size_ == 1) {
    std::copy(in, in + shards.total(), out);
    return;
  }
  KDGRID_MPI(MPI_Reduce_scatter(in, out, counts.data(), MPI_FLOAT, MPI_SUM, comm_));
  bytes_sent_ += (size_ - 1) * shards.shardSize() * 4;
}

void MpiCommunicator::allGather(float* data, const FlatShards& shards) {
  std::vector<int> counts, displs;
  shardCounts(shards, counts, displs);
  if (size_ == 1) return;
  KDGRID_MPI(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data, counts.data(), displs.data(),
                            MPI_FLOAT, comm_));
  bytes_sent_ += (size_ - 1) * shards.shardSize() * 4;
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

void MpiCommunicator::barrier() {
  KDGRID_MPI(MPI_Barrier(comm_));
}

}  // namespace kdgrid
