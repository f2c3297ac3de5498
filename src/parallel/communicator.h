// One axis of the process grid (data, pipeline or tensor parallel), with the operations
// training needs, named for what they do. The MPI implementation is below; the NCCL one
// (CUDA backend) is built from the same MPI_Comm_split groups and sits behind this interface.
#pragma once

#include <mpi.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "src/core/dtype.h"
#include "src/core/world_collectives.h"
#include "src/tensor/tensor.h"

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
  // not block (blocking sends would deadlock 1F1B, where neighbours send to each other):
  // `data` must stay valid until waitSend(ticket) for this send, or waitSends() for all sends
  // still pending, which the schedule calls at the end of each step. Waiting for a ticket
  // that a waitSends() has already retired returns at once.
  using SendTicket = uint64_t;
  virtual SendTicket send(const void* data, size_t bytes, int peer, int tag) = 0;
  virtual void recv(void* data, size_t bytes, int peer, int tag) = 0;
  virtual void waitSend(SendTicket ticket) = 0;
  virtual void waitSends() = 0;
  virtual void barrier() = 0;

  // --- Tensor forms: what the engine calls. A tensor's memory goes to MPI directly when its
  // backend lets the host address it (the CPU), else through host staging buffers (an NCCL
  // communicator takes device memory and the backend's stream instead). ---
  void allReduceSum(Tensor& t);  // fp32, bf16, fp16 (as above), uint32
  void allReduceMax(Tensor& t);  // fp32
  // in [shards.total()], out [shards.size(rank())], fp32.
  void reduceScatterSum(const Tensor& in, Tensor& out, const FlatShards& shards);
  void allGather(Tensor& t, const FlatShards& shards);  // fp32 [shards.total()]
  // Staged copies live until waitSend(ticket) or waitSends().
  SendTicket send(const Tensor& t, int peer, int tag);
  void recv(Tensor& t, int peer, int tag);

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
  // Host copies of in-flight sends by ticket (backends the host cannot address), freed when
  // waitSend(ticket) or waitSends() retires them.
  std::map<SendTicket, std::vector<char>> send_staging_;
};

// The collective watchdog (--collective-timeout). With a timeout > 0 every blocking operation
// of MpiCommunicator runs as its non-blocking MPI variant, polled with MPI_Test (a short spin,
// then sleeps of up to 200 us so a waiting rank does not hold a core). When the operation has
// not completed after `timeout_s` seconds, the rank takes a roll call on the axis: it sends
// "I gave up at op #N" to every other rank of the axis and, for a grace period, collects
// answers (a rank answers roll calls whenever it polls a wait on that axis). Then it throws
// Error (exit 1, not agreed: main aborts the job) naming the operation, the axis, the op's
// sequence number, and the ranks that did not answer (stopped, hung, or stuck on another axis:
// their own timeout names their culprit). timeout_s <= 0 uses the plain blocking calls.
struct WatchdogConfig {
  double timeout_s = 0;  // seconds; <= 0: off
};

// As a CollectiveWaiter, it watches collectives that other code starts on its communicator
// (the world communicator: agreement.h, checkpoints/), numbered with its own.
class MpiCommunicator final : public Communicator, public CollectiveWaiter {
 public:
  // Takes ownership of `comm` (freed in the destructor unless it is MPI_COMM_WORLD).
  MpiCommunicator(std::string axis, MPI_Comm comm, WatchdogConfig watchdog = {});
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
  SendTicket send(const void* data, size_t bytes, int peer, int tag) override;
  void recv(void* data, size_t bytes, int peer, int tag) override;
  void waitSend(SendTicket ticket) override;
  void waitSends() override;
  void barrier() override;

  MPI_Comm watchedComm() const override { return comm_; }
  void waitCollective(MPI_Request request, const char* what, size_t count,
                      const char* unit) override;

  MPI_Comm comm() const { return comm_; }
  const WatchdogConfig& watchdog() const { return watchdog_; }
  // Collective operations started on this axis (the watchdog's op numbers, 1-based).
  uint64_t collectivesStarted() const { return collective_seq_; }

 private:
  // What a wait is for, formatted only when it times out.
  struct PendingOp {
    const char* what;         // "all-reduce", "recv", ...
    size_t count = 0;         // elements (or bytes when `unit` says so)
    const char* unit = "";    // "floats", "bytes", ...
    std::vector<int> peers;   // point to point: the ranks (of this axis) it waits for
    uint64_t seq = 0;         // collective: its number on this axis; 0 for point to point
  };
  // Waits for `requests` until they complete or the watchdog's timeout passes (then throws).
  void waitAll(std::vector<MPI_Request>& requests, const PendingOp& op);
  void waitOne(MPI_Request request, const PendingOp& op);
  // Answers the roll calls other ranks of this axis have sent (never blocks).
  void answerRollCalls();
  [[noreturn]] void timedOut(const PendingOp& op);
  std::string describeRank(int axis_rank) const;  // "dp rank 1 (world rank 3)"
  void allReduce(void* data, size_t n, MPI_Datatype type, MPI_Op op, size_t elem_bytes,
                 const char* what, const char* unit);
  // Counts and displacements of `shards` for the v-collectives, checked against the axis.
  void shardCounts(const FlatShards& shards, std::vector<int>& counts,
                   std::vector<int>& displs) const;
  MPI_Comm comm_;
  WatchdogConfig watchdog_;
  uint64_t collective_seq_ = 0;  // collectives started on this axis
  std::vector<int> world_ranks_;  // world rank of each rank of this axis
  std::vector<int> send_peers_;   // peer of each pending send
  // Roll-call messages this rank sent (their buffers must outlive the sends).
  std::deque<std::array<int64_t, 2>> answers_;
  MPI_Op sum_bf16_ = MPI_OP_NULL, sum_f16_ = MPI_OP_NULL;  // user ops over MPI_UINT16_T
  std::vector<MPI_Request> pending_sends_;
  std::vector<SendTicket> send_tickets_;  // ticket of each pending send
  SendTicket next_ticket_ = 1;
};

}  // namespace kdgrid
