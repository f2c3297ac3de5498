// TensorPool (src/tensor/tensor_pool.h): buffers come back and are handed out again for the
// same size class, zeros() zero-fills reused (dirty) memory, live / peak / cached byte counts
// follow the tensors' lifetimes (views keep their buffer alive), and tensors may outlive the
// pool.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "src/tensor/tensor_pool.h"

namespace kdgrid {
namespace {

TEST(TensorPool, EmptyHasTheShapeAndIsAligned) {
  TensorPool pool;
  Tensor t = pool.empty({3, 5, 7}, DType::kBF16);
  EXPECT_EQ(t.shape(), (std::vector<int64_t>{3, 5, 7}));
  EXPECT_EQ(t.dtype(), DType::kBF16);
  EXPECT_EQ(t.bytes(), size_t{3 * 5 * 7 * 2});
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw()) % 64, 0u);
}

TEST(TensorPool, CountsLiveAndPeakBytes) {
  TensorPool pool;
  EXPECT_EQ(pool.liveBytes(), 0u);
  {
    Tensor a = pool.empty({1000}, DType::kF32);
    Tensor b = pool.empty({10, 10}, DType::kBF16);
    EXPECT_EQ(pool.liveBytes(), 4000u + 200u);
    EXPECT_EQ(pool.peakBytes(), 4200u);
    a = Tensor();
    EXPECT_EQ(pool.liveBytes(), 200u);
    EXPECT_EQ(pool.peakBytes(), 4200u);
  }
  EXPECT_EQ(pool.liveBytes(), 0u);
  EXPECT_EQ(pool.peakBytes(), 4200u);
  pool.resetPeak();
  EXPECT_EQ(pool.peakBytes(), 0u);
  Tensor c = pool.empty({16}, DType::kF32);
  EXPECT_EQ(pool.peakBytes(), 64u);
}

TEST(TensorPool, ReusesAFreedBufferOfTheSameSize) {
  TensorPool pool;
  void* first = nullptr;
  {
    Tensor a = pool.empty({256, 256}, DType::kF32);
    first = a.raw();
  }
  EXPECT_GT(pool.cachedBytes(), 0u);
  Tensor b = pool.empty({256, 256}, DType::kF32);
  EXPECT_EQ(b.raw(), first);
  EXPECT_EQ(pool.cachedBytes(), 0u);
  // A different shape with the same byte count is the same size class.
  b = Tensor();
  Tensor c = pool.empty({512, 256}, DType::kBF16);
  EXPECT_EQ(c.raw(), first);
}

TEST(TensorPool, ViewsKeepTheBufferAlive) {
  TensorPool pool;
  Tensor view;
  {
    Tensor a = pool.empty({8, 4}, DType::kF32);
    view = a.rows(2, 3).reshaped({12});
  }
  EXPECT_EQ(pool.liveBytes(), 8u * 4 * 4);  // the whole buffer, not the view's bytes
  view = Tensor();
  EXPECT_EQ(pool.liveBytes(), 0u);
}

TEST(TensorPool, ZerosClearsReusedMemory) {
  TensorPool pool;
  {
    Tensor dirty = pool.empty({4096}, DType::kF32);
    std::memset(dirty.raw(), 0xff, dirty.bytes());
  }
  Tensor z = pool.zeros({4096}, DType::kF32);
  const float* p = z.data<float>();
  for (int i = 0; i < 4096; ++i) ASSERT_EQ(p[i], 0.0f) << i;
}

TEST(TensorPool, CacheIsBoundedByThePeakAndTrimEmptiesIt) {
  TensorPool pool;
  // One tensor alive at a time, each larger than the last: no freed buffer fits the next
  // request, so without a bound the cache would hold every one of them (~5 MB); the bound is
  // the peak of live bytes (rounded up to its size class: at most 1/8 more, plus alignment).
  for (int64_t n = 1; n <= 50; ++n) {
    Tensor t = pool.empty({1000 * n}, DType::kF32);
  }
  EXPECT_EQ(pool.peakBytes(), 200000u);
  EXPECT_GT(pool.cachedBytes(), 0u);
  EXPECT_LE(pool.cachedBytes(), pool.peakBytes() * 9 / 8 + 64);
  pool.trim();
  EXPECT_EQ(pool.cachedBytes(), 0u);
}

TEST(TensorPool, TensorsMayOutliveThePool) {
  Tensor t;
  {
    TensorPool pool;
    t = pool.zeros({100}, DType::kF16);
  }
  EXPECT_EQ(t.numel(), 100);
  std::memset(t.raw(), 1, t.bytes());  // still valid memory
  t = Tensor();                        // returned to the orphaned pool state, then freed
}

}  // namespace
}  // namespace kdgrid
