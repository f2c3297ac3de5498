#include "src/parallel/communicator.h"

#include <sched.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <climits>

#include "src/core/check.h"
#include "src/core/log.h"
#include "src/tensor/staging.h"

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

using Clock = std::chrono::steady_clock;

// The watchdog's roll call (see WatchdogConfig): a message on its own tag, above the pipeline's
// tags and below 32767, the least MPI_TAG_UB the standard allows.
constexpr int kRollCallTag = 32001;
// The ring reduce-scatter's messages (reduceScatterSum), apart from the pipeline's and the
// roll call's.
constexpr int kReduceScatterTag = 32002;
constexpr int64_t kRollCall = 0;  // "I gave up waiting at op #N"
constexpr int64_t kAnswer = 1;    // "I am alive, at op #N"
// How long a rank that timed out collects answers: ranks waiting on the same axis answer
// within a poll (at most 200 us), so a second is plenty, and it bounds the job's end at
// timeout + 1 s + MPI_Abort.
constexpr double kRollCallGraceS = 1.0;
// Polling: spin (yielding the core) this long, then sleep, doubling up to the cap.
constexpr auto kSpinTime = std::chrono::microseconds(200);
constexpr long kMinSleepNs = 20'000, kMaxSleepNs = 200'000;

void sleepNs(long ns) {
  timespec t{0, ns};
  nanosleep(&t, nullptr);
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

MpiCommunicator::MpiCommunicator(std::string axis, MPI_Comm comm, WatchdogConfig watchdog)
    : Communicator(std::move(axis), 0, 1), comm_(comm), watchdog_(watchdog) {
  KDGRID_MPI(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
  KDGRID_MPI(MPI_Comm_rank(comm_, &rank_));
  KDGRID_MPI(MPI_Comm_size(comm_, &size_));
  KDGRID_MPI(MPI_Op_create(&sumHalf<bf16>, /*commute=*/1, &sum_bf16_));
  KDGRID_MPI(MPI_Op_create(&sumHalf<f16>, /*commute=*/1, &sum_f16_));
  MPI_Group group, world;
  KDGRID_MPI(MPI_Comm_group(comm_, &group));
  KDGRID_MPI(MPI_Comm_group(MPI_COMM_WORLD, &world));
  std::vector<int> mine(size_);
  for (int r = 0; r < size_; ++r) mine[r] = r;
  world_ranks_.resize(size_);
  KDGRID_MPI(MPI_Group_translate_ranks(group, size_, mine.data(), world, world_ranks_.data()));
  MPI_Group_free(&group);
  MPI_Group_free(&world);
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

// --- the watchdog ---

std::string MpiCommunicator::describeRank(int r) const {
  return fmt::format("{} rank {} (world rank {})", axis_, r, world_ranks_[r]);
}

void MpiCommunicator::waitOne(MPI_Request request, const PendingOp& op) {
  std::vector<MPI_Request> requests{request};
  waitAll(requests, op);
}

void MpiCommunicator::waitAll(std::vector<MPI_Request>& requests, const PendingOp& op) {
  const int n = static_cast<int>(requests.size());
  if (watchdog_.timeout_s <= 0) {
    KDGRID_MPI(MPI_Waitall(n, requests.data(), MPI_STATUSES_IGNORE));
    return;
  }
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(watchdog_.timeout_s));
  long sleep_ns = kMinSleepNs;
  for (;;) {
    int done = 0;
    KDGRID_MPI(MPI_Testall(n, requests.data(), &done, MPI_STATUSES_IGNORE));
    if (done) return;
    const auto now = Clock::now();
    if (now - start < kSpinTime) {
      sched_yield();
      continue;
    }
    answerRollCalls();
    if (now >= deadline) timedOut(op);
    sleepNs(sleep_ns);
    sleep_ns = std::min(2 * sleep_ns, kMaxSleepNs);
  }
}

void MpiCommunicator::answerRollCalls() {
  for (;;) {
    int flag = 0;
    MPI_Status status;
    KDGRID_MPI(MPI_Iprobe(MPI_ANY_SOURCE, kRollCallTag, comm_, &flag, &status));
    if (!flag) return;
    std::array<int64_t, 2> call{};
    KDGRID_MPI(MPI_Recv(call.data(), 2, MPI_INT64_T, status.MPI_SOURCE, kRollCallTag, comm_,
                        MPI_STATUS_IGNORE));
    if (call[1] != kRollCall) continue;  // a late answer to a roll call of ours
    logRank("{} gave up waiting at op #{} on the {} axis; this rank is at op #{}",
            describeRank(status.MPI_SOURCE), call[0], axis_, collective_seq_);
    // Non-blocking: the caller may already be gone. The buffer stays alive in answers_ (a
    // deque keeps addresses); roll calls happen only on a failing job, so they are few.
    answers_.push_back({static_cast<int64_t>(collective_seq_), kAnswer});
    MPI_Request request;
    KDGRID_MPI(MPI_Isend(answers_.back().data(), 2, MPI_INT64_T, status.MPI_SOURCE, kRollCallTag,
                         comm_, &request));
    KDGRID_MPI(MPI_Request_free(&request));
  }
}
void MpiCommunicator::timedOut(const PendingOp& op) {
  std::string what = fmt::format("{}", op.what);
  if (op.count > 0 || op.unit[0]) what += fmt::format(" of {} {}", op.count, op.unit);
  what += fmt::format(" on the {} axis ({} ranks)", axis_, size_);
  if (op.seq > 0) what += fmt::format(", collective #{} on this axis,", op.seq);
  for (size_t i = 0; i < op.peers.size(); ++i)
    what += fmt::format("{} {}", i ? "," : " with", describeRank(op.peers[i]));
  // Roll call: tell every other rank of the axis, collect who answers within the grace period.
  std::vector<int64_t> heard(size_, -1);  // op # each rank answered with; -1: silent
  heard[rank_] = static_cast<int64_t>(collective_seq_);
  answers_.push_back({static_cast<int64_t>(collective_seq_), kRollCall});
  const int64_t* call = answers_.back().data();  // outlives the sends (a member)
  for (int r = 0; r < size_; ++r) {
    if (r == rank_) continue;
    MPI_Request request;
    KDGRID_MPI(MPI_Isend(call, 2, MPI_INT64_T, r, kRollCallTag, comm_, &request));
    KDGRID_MPI(MPI_Request_free(&request));
  }
  const auto grace_end = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                            std::chrono::duration<double>(kRollCallGraceS));
  int silent = size_ - 1;
  while (silent > 0 && Clock::now() < grace_end) {
    int flag = 0;
    MPI_Status status;
    KDGRID_MPI(MPI_Iprobe(MPI_ANY_SOURCE, kRollCallTag, comm_, &flag, &status));
    if (!flag) {
      sleepNs(kMaxSleepNs);
      continue;
    }
    std::array<int64_t, 2> msg{};
    KDGRID_MPI(MPI_Recv(msg.data(), 2, MPI_INT64_T, status.MPI_SOURCE, kRollCallTag, comm_,
                        MPI_STATUS_IGNORE));
    // A roll call of a rank that timed out too answers ours as well.
    if (heard[status.MPI_SOURCE] < 0) --silent;
    heard[status.MPI_SOURCE] = msg[0];
  }
  std::string missing, answered;
  for (int r = 0; r < size_; ++r) {
    if (r == rank_) continue;
    std::string& list = heard[r] < 0 ? missing : answered;
    list += fmt::format("{}{}", list.empty() ? "" : ", ", describeRank(r));
    if (heard[r] >= 0) list += fmt::format(" at collective #{}", heard[r]);
  }
  std::string message = fmt::format(
      "collective timeout: {} did not complete within --collective-timeout {} s. ", what,
      watchdog_.timeout_s);
  message += missing.empty()
                 ? "Every rank of the axis answered the roll call: a rank waits elsewhere."
                 : fmt::format("Silent (stopped, hung, or blocked on another axis): {}.", missing);
  if (!answered.empty()) message += fmt::format(" Answered: {}.", answered);
  throw Error(kExitFailure, fmt::format("{} [{}]", message, whereAmI()));
}

void MpiCommunicator::allReduce(void* data, size_t n, MPI_Datatype type, MPI_Op op,
                                size_t elem_bytes, const char* what, const char* unit) {
  if (size_ == 1 || n == 0) return;
  const int count = countAsInt(n);
  ++collective_seq_;
  if (watchdog_.timeout_s <= 0) {
    KDGRID_MPI(MPI_Allreduce(MPI_IN_PLACE, data, count, type, op, comm_));
  } else {
    MPI_Request request;
    KDGRID_MPI(MPI_Iallreduce(MPI_IN_PLACE, data, count, type, op, comm_, &request));
    waitOne(request, {what, n, unit, {}, collective_seq_});
  }
  bytes_sent_ += 2 * (size_ - 1) * n * elem_bytes / size_;
}

void MpiCommunicator::allReduceSum(float* d, size_t n) {
  allReduce(d, n, MPI_FLOAT, MPI_SUM, 4, "all-reduce (sum)", "floats");
}
void MpiCommunicator::allReduceSum(double* d, size_t n) {
  allReduce(d, n, MPI_DOUBLE, MPI_SUM, 8, "all-reduce (sum)", "doubles");
}
void Communicator::allReduceSum(Tensor& t) {
  HostView h(t, true);
  allReduceSum(h.data(), t.numel(), t.dtype());
  h.store(t);
}

void Communicator::allReduceMax(Tensor& t) {
  KDGRID_CHECK(t.dtype() == DType::kF32, "allReduceMax: {}", t.describe());
  HostView h(t, true);
  allReduceMax(static_cast<float*>(h.data()), t.numel());
  h.store(t);
}

void Communicator::reduceScatterSum(const Tensor& in, Tensor& out, const FlatShards& shards) {
  KDGRID_CHECK(in.dtype() == DType::kF32 && out.dtype() == DType::kF32 &&
                   static_cast<size_t>(in.numel()) == shards.total() &&
                   static_cast<size_t>(out.numel()) >= shards.size(rank()),
               "reduceScatterSum: in {} out {}", in.describe(), out.describe());
  HostView hin(in, true), hout(out, false);
  reduceScatterSum(static_cast<const float*>(hin.data()), static_cast<float*>(hout.data()),
                   shards);
  hout.store(out);
}

void Communicator::allGather(Tensor& t, const FlatShards& shards) {
  KDGRID_CHECK(t.dtype() == DType::kF32 && static_cast<size_t>(t.numel()) == shards.total(),
               "allGather: {}", t.describe());
  HostView h(t, true);
  allGather(static_cast<float*>(h.data()), shards);
  h.store(t);
}

Communicator::SendTicket Communicator::send(const Tensor& t, int peer, int tag) {
  if (t.backend().hostAccessible()) return send(t.raw(), t.bytes(), peer, tag);
  std::vector<char> staged(t.bytes());
  copyToHost(t, staged.data());
  const SendTicket ticket = send(staged.data(), staged.size(), peer, tag);
  send_staging_.emplace(ticket, std::move(staged));  // the vector's buffer does not move
  return ticket;
}

void Communicator::recv(Tensor& t, int peer, int tag) {
  HostView h(t, false);
  recv(h.data(), t.bytes(), peer, tag);
  h.store(t);
}

void MpiCommunicator::allReduceSum(void* d, size_t n, DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return allReduce(d, n, MPI_FLOAT, MPI_SUM, 4, "all-reduce (sum)", "floats");
    case DType::kBF16:
      return allReduce(d, n, MPI_UINT16_T, sum_bf16_, 2, "all-reduce (sum)", "bf16 values");
    case DType::kF16:
      return allReduce(d, n, MPI_UINT16_T, sum_f16_, 2, "all-reduce (sum)", "fp16 values");
    case DType::kU32:
      return allReduce(d, n, MPI_UINT32_T, MPI_SUM, 4, "all-reduce (sum)", "uint32 values");
  }
}
void MpiCommunicator::allReduceMax(float* d, size_t n) {
  allReduce(d, n, MPI_FLOAT, MPI_MAX, 4, "all-reduce (max)", "floats");
}
void MpiCommunicator::allReduceMax(int64_t* d, size_t n) {
  allReduce(d, n, MPI_INT64_T, MPI_MAX, 8, "all-reduce (max)", "int64 values");
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

// A ring: in p - 1 steps each rank passes a shard's partial sum to its right neighbour and adds
// its own addend to the one arriving from the left, so rank r ends with shard r summed in a
// fixed order (x_{r+1} + x_{r+2} + ... + x_r). One shard-sized buffer per rank (two on a rank
// whose own shard is the short last one): Open MPI's (I)reduce_scatter reduced the whole buffer
// onto rank 0 first, a full-size copy of the gradients there (ZeRO-1 exists to save memory).
void MpiCommunicator::reduceScatterSum(const float* in, float* out, const FlatShards& shards) {
  std::vector<int> counts, displs;
  shardCounts(shards, counts, displs);
  if (size_ == 1) {
    std::copy(in, in + shards.total(), out);
    return;
  }
  ++collective_seq_;
  const int p = size_, right = (rank_ + 1) % p, left = (rank_ + p - 1) % p;
  auto shard = [p](int c) { return ((c % p) + p) % p; };
  // `partial` is sent while the next partial sum arrives in `out` (the caller's shard buffer),
  // so the ring needs one shard of its own; a rank whose own shard is shorter than the others
  // (the last, when p does not divide the buffer) takes them in a buffer of their size.
  std::vector<float> partial(shards.shardSize()), longer;
  if (static_cast<size_t>(counts[rank_]) < shards.shardSize()) longer.resize(shards.shardSize());
  float* arriving = longer.empty() ? out : longer.data();
  const int first = shard(rank_ - 1);
  std::copy(in + displs[first], in + displs[first] + counts[first], partial.begin());
  for (int k = 0; k < p - 1; ++k) {
    const int send_c = shard(rank_ - k - 1), recv_c = shard(rank_ - k - 2);
    std::vector<MPI_Request> requests(2);
    KDGRID_MPI(MPI_Irecv(arriving, counts[recv_c], MPI_FLOAT, left, kReduceScatterTag, comm_,
                         &requests[0]));
    KDGRID_MPI(MPI_Isend(partial.data(), counts[send_c], MPI_FLOAT, right, kReduceScatterTag,
                         comm_, &requests[1]));
    // A collective: the watchdog names the ranks of the axis that did not arrive.
    waitAll(requests, {"reduce-scatter (sum)", shards.total(), "floats", {}, collective_seq_});
    const float* own = in + displs[recv_c];
    float* sum = k + 1 < p - 1 ? partial.data() : out;  // the last step's sum is this rank's
    for (int i = 0; i < counts[recv_c]; ++i) sum[i] = arriving[i] + own[i];
  }
  bytes_sent_ += (size_ - 1) * shards.shardSize() * 4;
}

void MpiCommunicator::allGather(float* data, const FlatShards& shards) {
  std::vector<int> counts, displs;
  shardCounts(shards, counts, displs);
  if (size_ == 1) return;
  ++collective_seq_;
  if (watchdog_.timeout_s <= 0) {
    KDGRID_MPI(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data, counts.data(),
                              displs.data(), MPI_FLOAT, comm_));
  } else {
    MPI_Request request;
    KDGRID_MPI(MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data, counts.data(),
                               displs.data(), MPI_FLOAT, comm_, &request));
    waitOne(request, {"all-gather", shards.total(), "floats", {}, collective_seq_});
  }
  bytes_sent_ += (size_ - 1) * shards.shardSize() * 4;
}

void MpiCommunicator::broadcast(void* data, size_t bytes, int root) {
  if (size_ == 1) return;
  const int count = countAsInt(bytes);
  ++collective_seq_;
  if (watchdog_.timeout_s <= 0) {
    KDGRID_MPI(MPI_Bcast(data, count, MPI_BYTE, root, comm_));
  } else {
    MPI_Request request;
    KDGRID_MPI(MPI_Ibcast(data, count, MPI_BYTE, root, comm_, &request));
    waitOne(request, {"broadcast", bytes, "bytes", {root}, collective_seq_});
  }
  if (rank_ == root) bytes_sent_ += bytes;
}

Communicator::SendTicket MpiCommunicator::send(const void* data, size_t bytes, int peer,
                                               int tag) {
  MPI_Request request;
  KDGRID_MPI(MPI_Isend(data, countAsInt(bytes), MPI_BYTE, peer, tag, comm_, &request));
  pending_sends_.push_back(request);
  send_peers_.push_back(peer);
  send_tickets_.push_back(next_ticket_);
  bytes_sent_ += bytes;
  return next_ticket_++;
}

void MpiCommunicator::waitSend(SendTicket ticket) {
  const auto found = std::find(send_tickets_.begin(), send_tickets_.end(), ticket);
  if (found == send_tickets_.end()) return;  // retired by waitSends()
  const size_t i = found - send_tickets_.begin();
  waitOne(pending_sends_[i], {"completion of a send", 1, "messages", {send_peers_[i]}, 0});
  pending_sends_.erase(pending_sends_.begin() + i);
  send_peers_.erase(send_peers_.begin() + i);
  send_tickets_.erase(send_tickets_.begin() + i);
  send_staging_.erase(ticket);
}

void MpiCommunicator::waitSends() {
  if (pending_sends_.empty()) return;
  std::vector<int> peers = send_peers_;
  std::sort(peers.begin(), peers.end());
  peers.erase(std::unique(peers.begin(), peers.end()), peers.end());
  waitAll(pending_sends_, {"completion of sends", pending_sends_.size(), "messages", peers, 0});
  pending_sends_.clear();
  send_peers_.clear();
  send_tickets_.clear();
  send_staging_.clear();
}

void MpiCommunicator::recv(void* data, size_t bytes, int peer, int tag) {
  const int count = countAsInt(bytes);
  if (watchdog_.timeout_s <= 0) {
    KDGRID_MPI(MPI_Recv(data, count, MPI_BYTE, peer, tag, comm_, MPI_STATUS_IGNORE));
    return;
  }
  MPI_Request request;
  KDGRID_MPI(MPI_Irecv(data, count, MPI_BYTE, peer, tag, comm_, &request));
  waitOne(request, {"receive", bytes, "bytes", {peer}, 0});
}

void MpiCommunicator::waitCollective(MPI_Request request, const char* what, size_t count,
                                     const char* unit) {
  ++collective_seq_;
  waitOne(request, {what, count, unit, {}, collective_seq_});
}

void MpiCommunicator::barrier() {
  ++collective_seq_;
  if (watchdog_.timeout_s <= 0) {
    KDGRID_MPI(MPI_Barrier(comm_));
    return;
  }
  MPI_Request request;
  KDGRID_MPI(MPI_Ibarrier(comm_, &request));
  waitOne(request, {"barrier", 0, "", {}, collective_seq_});
}

}  // namespace kdgrid
