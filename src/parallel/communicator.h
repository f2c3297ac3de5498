// One axis of the process grid (data, pipeline or tensor parallel), with the operations
// training needs, named for what they do. The MPI implementation is below; the NCCL one
// (CUDA backend) is built from the same MPI_Comm_split groups and sits behind this interface.
#pragma once

#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace kdgrid {

// A flat buffer of n elements dealt over `parts` ranks as contiguous shards of
// ceil(n / parts) elements, the last ones shorter (or empty): the shards of the buffer padded
// to a multiple of `parts`, without storing the padding. ZeRO-1 deals this rank's flat
// parameter buffer over its data-parallel group this way (DESIGN section 7).
class FlatShards {
 public:
  FlatShards(size_t n, int parts);
  size_t total() const { return n_; }
  int parts() const { return parts_; }
  size_t shardSize() const { return shard_; }  // ceil(n / parts): the padded shard
  size_t begin(int r) const;
  size_t end(int r) const;
  size_t size(int r) const { return end(r) - begin(r); }

 private:
  size_t n_;
  int parts_;
  size_t shard_;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  int rank() const { return rank_; }
  int size() const { return size_; }
  const std::string& axis() const { return axis_; }  // "dp", "pp", "tp" or "world"

  // In place over all ranks of the axis. n elements.
  virtual void allReduceSum(float* data, size_t n) = 0;
  virtual void allReduceSum(double* data, size_t n) = 0;
  // Activations and their gradients in the compute dtype. bf16 and fp16 travel as 2 bytes;
  // each pairwise sum is done in fp32 and rounded once (as NCCL sums them), so two ranks
  // give exactly round(a + b), and every rank ends with the same bits.
  virtual void allReduceSum(void* data, size_t n, DType dtype) = 0;
  virtual void allReduceMax(float* data, size_t n) = 0;
  virtual void allReduceMax(int64_t* data, size_t n) = 0;
  // ZeRO-1. `shards` splits a flat buffer over the ranks of this axis (parts == size()).
  // in: the whole buffer [shards.total()] (this rank's addend); out: [shards.size(rank())],
  // the sum over ranks of this rank's shard.
  virtual void reduceScatterSum(const float* in, float* out, const FlatShards& shards) = 0;
  // In place over the whole buffer [shards.total()]: each rank's shard, read from its place
  // on that rank, lands in the same place on every rank.
  virtual void allGather(float* data, const FlatShards& shards) = 0;
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  // Point to point along the axis (pipeline activations and their gradients). send() does
  // not block: `data` must stay valid until waitSends(), which the schedule calls once per
  // step (blocking sends would deadlock 1F1B, where neighbours send to each other).
  virtual void send(const void* data, size_t bytes, int peer, int tag) = 0;
  virtual void recv(void* data, size_t bytes, int peer, int tag) = 0;
  virtual void waitSends() = 0;
  virtual void barrier() = 0;

  // Bytes this rank has sent on this axis, counted as the optimal algorithm sends them
  // (ring all-reduce: 2 (p-1)/p n; reduce-scatter, all-gather of FlatShards: (p-1) shard
  // sizes, as over the padded buffer; broadcast: n from the root; send: n), so a benchmark
  // can compare with the analytic minimum of a configuration.
  uint64_t bytesSent() const { return bytes_sent_; }
  void resetBytesSent() { bytes_sent_ = 0; }

 protected:
  Communicator(std::string axis, int rank, int size)
      : axis_(std::move(axis)), rank_(rank), size_(size) {}
  std::string axis_;
  int rank_ = 0;
  int size_ = 1;
  uint64_t bytes_sent_ = 0;
};

class MpiCommunicator final : public Communicator {
 public:
  // Takes ownership of `comm` (freed in the destructor unless it is MPI_COMM_WORLD).
  MpiCommunicator(std::string axis, MPI_Comm comm);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  void allReduceSum(float* data, size_t n) override;
  void allReduceSum(double* data, size_t n) override;
  void allReduceSum(void* data, size_t n, DType dtype) override;
  void allReduceMax(float* data, size_t n) override;
  void allReduceMax(int64_t* data, size_t n) override;
  void reduceScatterSum(const float* in, float* out, const FlatShards& shards) override;
  void allGather(float* data, const FlatShards& shards) override;
  void broadcast(void* data, size_t bytes, int root) override;
  void send(const void* data, size_t bytes, int peer, int tag) override;
  void recv(void* data, size_t bytes, int peer, int tag) override;
  void waitSends() override;
  void barrier() override;

  MPI_Comm comm() const { return comm_; }

 private:
  void allReduce(void* data, size_t n, MPI_Datatype type, MPI_Op op, size_t elem_bytes);
  // Counts and displacements of `shards` for the v-collectives, checked against the axis.
  void shardCounts(const FlatShards& shards, std::vector<int>& counts,
                   std::vector<int>& displs) const;
  MPI_Comm comm_;
  MPI_Op sum_bf16_ = MPI_OP_NULL, sum_f16_ = MPI_OP_NULL;  // user ops over MPI_UINT16_T
  std::vector<MPI_Request> pending_sends_;
};

}  // namespace kdgrid
