// One axis of the process grid (data, pipeline or tensor parallel), with the operations
// training needs, named for what they do. The MPI implementation is below; the NCCL one
// (CUDA backend) is built from the same MPI_Comm_split groups and sits behind this interface.
#pragma once

#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace kdgrid {

class Communicator {
 public:
  virtual ~Communicator() = default;
  int rank() const { return rank_; }
  int size() const { return size_; }
  const std::string& axis() const { return axis_; }  // "dp", "pp", "tp" or "world"

  // In place over all ranks of the axis. n elements.
  virtual void allReduceSum(float* data, size_t n) = 0;
  virtual void allReduceSum(double* data, size_t n) = 0;
  virtual void allReduceMax(float* data, size_t n) = 0;
  virtual void allReduceMax(int64_t* data, size_t n) = 0;
  // in: size() * n_per_rank elements; out: the sum of block rank() over all ranks (n_per_rank).
  virtual void reduceScatterSum(const float* in, float* out, size_t n_per_rank) = 0;
  // in: n_per_rank elements; out: size() * n_per_rank, rank r's block at r * n_per_rank.
  virtual void allGather(const float* in, float* out, size_t n_per_rank) = 0;
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  // Point to point along the axis (pipeline activations and their gradients). send() does
  // not block: `data` must stay valid until waitSends(), which the schedule calls once per
  // step (blocking sends would deadlock 1F1B, where neighbours send to each other).
  virtual void send(const void* data, size_t bytes, int peer, int tag) = 0;
  virtual void recv(void* data, size_t bytes, int peer, int tag) = 0;
  virtual void waitSends() = 0;
  virtual void barrier() = 0;

  // Bytes this rank has sent on this axis, counted as the optimal algorithm sends them
  // (ring all-reduce: 2 (p-1)/p n; reduce-scatter, all-gather: (p-1)/p n; send: n), so a
  // benchmark can compare with the analytic minimum of a configuration.
  uint64_t bytesSent() const { return bytes_sent_; }
  void resetBytesSent() { bytes_sent_ = 0; }

 protected:
  Communicator(std::string axis, int rank, int size) : axis_(std::move(axis)), rank_(rank), size_(size) {}
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
  void allReduceMax(float* data, size_t n) override;
  void allReduceMax(int64_t* data, size_t n) override;
  void reduceScatterSum(const float* in, float* out, size_t n_per_rank) override;
  void allGather(const float* in, float* out, size_t n_per_rank) override;
  void broadcast(void* data, size_t bytes, int root) override;
  void send(const void* data, size_t bytes, int peer, int tag) override;
  void recv(void* data, size_t bytes, int peer, int tag) override;
  void waitSends() override;
  void barrier() override;

  MPI_Comm comm() const { return comm_; }

 private:
  void allReduce(void* data, size_t n, MPI_Datatype type, MPI_Op op, size_t elem_bytes);
  MPI_Comm comm_;
  std::vector<MPI_Request> pending_sends_;
};

}  // namespace kdgrid
