// Communicator (src/parallel/communicator.h) under mpirun -np 1..4 over MPI_COMM_WORLD: the
// ZeRO collectives over FlatShards (uneven and empty shards included), the bf16/fp16
// all-reduce, and the bytes counters the communication benchmark compares with its formulas.
// Inputs are small integers or dyadic values, so every sum is exact whatever the order.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstring>
#include <vector>

#include "src/parallel/communicator.h"

namespace kdgrid {
namespace {

MpiCommunicator worldComm() {
  MPI_Comm comm;
  MPI_Comm_dup(MPI_COMM_WORLD, &comm);
  return MpiCommunicator("world", comm);
}

// Every rank holds the same bytes: the minimum and maximum of each word agree.
bool sameOnAllRanks(const void* data, size_t bytes) {
  std::vector<unsigned char> lo(static_cast<const unsigned char*>(data),
                                static_cast<const unsigned char*>(data) + bytes);
  std::vector<unsigned char> hi = lo;
  MPI_Allreduce(MPI_IN_PLACE, lo.data(), static_cast<int>(bytes), MPI_UNSIGNED_CHAR, MPI_MIN,
                MPI_COMM_WORLD);
  MPI_Allreduce(MPI_IN_PLACE, hi.data(), static_cast<int>(bytes), MPI_UNSIGNED_CHAR, MPI_MAX,
                MPI_COMM_WORLD);
  return lo == hi;
}

TEST(FlatShards, CoverTheBufferInCeilSizedPieces) {
  for (size_t n : {0, 1, 5, 8, 37}) {
    for (int parts : {1, 2, 3, 4, 7}) {
      SCOPED_TRACE(testing::Message() << "n " << n << " parts " << parts);
      FlatShards s(n, parts);
      EXPECT_EQ(s.shardSize(), (n + parts - 1) / parts);
      size_t at = 0;
      for (int r = 0; r < parts; ++r) {
        EXPECT_EQ(s.begin(r), at);
        EXPECT_LE(s.size(r), s.shardSize());
        if (s.end(r) < n) {
          EXPECT_EQ(s.size(r), s.shardSize());  // only the tail is short
        }
        at = s.end(r);
      }
      EXPECT_EQ(at, n);
    }
  }
}

TEST(Communicator, ReduceScatterSumsEachShard) {
  MpiCommunicator comm = worldComm();
  const int p = comm.size(), r = comm.rank();
  for (size_t n : {0, 1, 5, 37, 1000}) {
    SCOPED_TRACE(testing::Message() << "n " << n);
    FlatShards shards(n, p);
    std::vector<float> in(n);
    for (size_t i = 0; i < n; ++i) in[i] = float(1000 * r + i);
    std::vector<float> out(shards.size(r) + 1, -7.0f);  // one sentinel past the shard
    comm.resetBytesSent();
    comm.reduceScatterSum(in.data(), out.data(), shards);
    for (size_t i = 0; i < shards.size(r); ++i) {
      const size_t g = shards.begin(r) + i;
      ASSERT_EQ(out[i], float(1000 * p * (p - 1) / 2 + p * g)) << "element " << g;
    }
    EXPECT_EQ(out.back(), -7.0f);
    EXPECT_EQ(comm.bytesSent(), p == 1 ? 0 : (p - 1) * shards.shardSize() * 4);
  }
}

TEST(Communicator, AllGatherFillsEveryShardInPlace) {
  MpiCommunicator comm = worldComm();
  const int p = comm.size(), r = comm.rank();
  for (size_t n : {0, 1, 5, 37, 1000}) {
    SCOPED_TRACE(testing::Message() << "n " << n);
    FlatShards shards(n, p);
    std::vector<float> data(n, -1.0f);  // stale everywhere but this rank's shard
    for (size_t i = shards.begin(r); i < shards.end(r); ++i) data[i] = float(3 * i + 1);
    comm.resetBytesSent();
    comm.allGather(data.data(), shards);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(data[i], float(3 * i + 1)) << "element " << i;
    EXPECT_EQ(comm.bytesSent(), p == 1 ? 0 : (p - 1) * shards.shardSize() * 4);
  }
}

template <typename T>
void checkHalfAllReduce(DType dtype) {
  MpiCommunicator comm = worldComm();
  const int p = comm.size(), r = comm.rank();
  // Integers below 256 / p and their negatives: every partial sum is exact in bf16 and fp16.
  const size_t n = 1001;
  std::vector<T> data(n);
  for (size_t i = 0; i < n; ++i) data[i] = T(float(int((i * 7 + r * 13) % 61) - 30));
  comm.resetBytesSent();
  comm.allReduceSum(data.data(), n, dtype);
  for (size_t i = 0; i < n; ++i) {
    float expected = 0;
    for (int q = 0; q < p; ++q) expected += float(int((i * 7 + q * 13) % 61) - 30);
    ASSERT_EQ(toFloat(data[i]), expected) << "element " << i;
  }
  EXPECT_EQ(comm.bytesSent(), 2 * (p - 1) * n * 2 / p);  // 2 bytes an element on the wire
  EXPECT_TRUE(sameOnAllRanks(data.data(), n * sizeof(T)));
}

TEST(Communicator, AllReduceSumBf16) {
  checkHalfAllReduce<bf16>(DType::kBF16);
}
TEST(Communicator, AllReduceSumF16) {
  checkHalfAllReduce<f16>(DType::kF16);
}

// Inexact sums: each pairwise addition happens in fp32 and is rounded once, so two ranks get
// exactly round(a + b), and every rank ends with the same bits whatever the rank count.
TEST(Communicator, HalfSumsRoundOncePerAddition) {
  MpiCommunicator comm = worldComm();
  const int p = comm.size(), r = comm.rank();
  const size_t n = 4096;
  auto value = [](int rank, size_t i) {
    return 1.0f + float((i * 2654435761u + rank * 40503u) % 1000003) / 1000003.0f * 3.0f;
  };
  std::vector<bf16> b(n);
  std::vector<f16> h(n);
  for (size_t i = 0; i < n; ++i) b[i] = bf16(value(r, i)), h[i] = f16(value(r, i));
  comm.allReduceSum(b.data(), n, DType::kBF16);
  comm.allReduceSum(h.data(), n, DType::kF16);
  EXPECT_TRUE(sameOnAllRanks(b.data(), n * 2));
  EXPECT_TRUE(sameOnAllRanks(h.data(), n * 2));
  if (p == 2) {
    for (size_t i = 0; i < n; ++i) {
      const float sb = toFloat(bf16(value(0, i))) + toFloat(bf16(value(1, i)));
      const float sh = toFloat(f16(value(0, i))) + toFloat(f16(value(1, i)));
      ASSERT_EQ(b[i].bits, bf16(sb).bits) << "element " << i;
      ASSERT_EQ(h[i].bits, f16(sh).bits) << "element " << i;
    }
  }
}

TEST(Communicator, Fp32AllReduceThroughTheDtypeEntry) {
  MpiCommunicator comm = worldComm();
  const int p = comm.size(), r = comm.rank();
  std::vector<float> data(10, float(r + 1));
  comm.allReduceSum(data.data(), data.size(), DType::kF32);
  for (float x : data) EXPECT_EQ(x, float(p * (p + 1) / 2));
}

}  // namespace
}  // namespace kdgrid
