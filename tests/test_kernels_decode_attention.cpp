// Decode attention (one query per sequence over a K/V cache) and the cache write: the fast
// kernels against the double reference over odd shapes, windows and storage types, with
// sentinels after every output and NaN in every cache position the query must not read; the
// decode result equals the last row of the training attention kernel over the same tokens
// (same window convention); the result does not depend on the thread count.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/decode_attention.h"
#include "kernels/cpu/reference/decode_attention.h"
#include "tests/kernel_test_util.h"

namespace kdgrid {
namespace {

using test::allClose;
using test::GuardedBuffer;
using test::Tolerance;
using test::toFloats;
using test::toStorage;

struct Shape {
  int64_t batch, heads, hd, max_seq, len, window;
  int64_t channels() const { return heads * hd; }
  int64_t cacheSize() const { return batch * heads * max_seq * hd; }
  int64_t first() const { return window > 0 ? std::max<int64_t>(0, len - window) : 0; }
  std::string str() const {
    return "B=" + std::to_string(batch) + " nh=" + std::to_string(heads) +
           " hd=" + std::to_string(hd) + " S=" + std::to_string(max_seq) +
           " len=" + std::to_string(len) + " W=" + std::to_string(window);
  }
};

const std::vector<Shape>& shapes() {
  static const std::vector<Shape> kShapes = {
      {1, 1, 1, 1, 1, 0},     {1, 1, 3, 4, 3, 0},      {2, 3, 17, 20, 17, 0},
      {1, 2, 64, 128, 127, 0}, {3, 1, 16, 300, 255, 0}, {1, 4, 64, 256, 256, 0},
      {2, 2, 17, 40, 33, 1},  {1, 3, 3, 50, 37, 5},    {2, 2, 64, 300, 255, 64},
      {1, 1, 5, 10, 7, 100},  {1, 12, 64, 1000, 1000, 0}, {2, 5, 7, 19, 1, 3},
      // Threads (CTest runs this at 1 and 2): 9 (b, h) pairs of enough work are split unevenly
      // over the threads; one pair of the same work is never split.
      {3, 3, 16, 800, 777, 0}, {1, 1, 64, 1000, 1000, 0},
  };
  return kShapes;
}

// See tests/kernel_test_util.h (storageRtol): outputs are convex combinations of value rows,
// rounded once to the storage type after fp32 math; atol scales with the largest output since
// entries near zero come from cancelling terms as large as it.
template <typename T, typename V>
Tolerance tol(const V& ref) {
  const double rtol = test::storageRtol<T>();
  return {rtol * test::maxAbs(ref), rtol};
}

// A cache whose positions [first, len) of every (b, h) hold random values and every other
// position NaN (the guard pattern): a kernel reading outside the window gives NaN.
template <typename T>
struct Cache {
  GuardedBuffer<T> k, v;
  std::vector<float> k_f, v_f;  // the same values in fp32 (NaN elsewhere)
  Cache(const Shape& s, uint32_t seed) : k(s.cacheSize()), v(s.cacheSize()) {
    k.fillPattern(0, s.cacheSize());
    v.fillPattern(0, s.cacheSize());
    const auto kv = toStorage<T>(test::normalValues(2 * s.cacheSize(), seed));
    for (int64_t bh = 0; bh < s.batch * s.heads; ++bh)
      for (int64_t t = s.first(); t < s.len; ++t)
        for (int64_t c = 0; c < s.hd; ++c) {
          const int64_t i = (bh * s.max_seq + t) * s.hd + c;
          k[i] = kv[i];
          v[i] = kv[s.cacheSize() + i];
        }
    k_f = test::toFloats(k.data(), s.cacheSize());
    v_f = test::toFloats(v.data(), s.cacheSize());
  }
};

template <typename T>
void expectDecodeMatchesReference(const Shape& s, uint32_t seed) {
  SCOPED_TRACE(s.str() + " " + std::string(dtypeName(dtypeOf<T>())));
  const Cache<T> cache(s, seed);
  // The query row sits in a [B, 3C] QKV row; its K and V columns are not read (NaN here).
  GuardedBuffer<T> qkv(s.batch * 3 * s.channels());
  qkv.fillPattern(0, qkv.size());
  const auto q = toStorage<T>(test::normalValues(s.batch * s.channels(), seed + 7, 1.5f));
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t c = 0; c < s.channels(); ++c) qkv[b * 3 * s.channels() + c] = q[b * s.channels() + c];
  const std::vector<float> qkv_f = test::toFloats(qkv.data(), qkv.size());

  GuardedBuffer<T> out(s.batch * s.channels());
  cpu::decodeAttention(out.data(), qkv.data(), cache.k.data(), cache.v.data(), s.batch, s.len,
                       s.max_seq, s.channels(), s.hd, s.window);
  std::vector<float> ref(out.size());
  cpu::ref::decodeAttention(ref.data(), qkv_f.data(), cache.k_f.data(), cache.v_f.data(), s.batch,
                            s.len, s.max_seq, s.channels(), s.hd, s.window);
  EXPECT_TRUE(out.guardIntact());
  EXPECT_TRUE(allClose(out.data(), ref.data(), ref.size(), tol<T>(ref)));
}

TEST(DecodeAttention, MatchesReferenceFp32) {
  test::ScopedThreads threads(2);
  uint32_t seed = 1;
  for (const Shape& s : shapes()) expectDecodeMatchesReference<float>(s, seed++);
}
TEST(DecodeAttention, MatchesReferenceBf16) {
  uint32_t seed = 100;
  for (const Shape& s : shapes()) expectDecodeMatchesReference<bf16>(s, seed++);
}
TEST(DecodeAttention, MatchesReferenceFp16) {
  uint32_t seed = 200;
  for (const Shape& s : shapes()) expectDecodeMatchesReference<f16>(s, seed++);
}

// The reference itself on a case worked by hand: one head, hd 1, q = 1, keys 0 and ln 3 (scale
// 1): probabilities 1/4 and 3/4, values 2 and 6 -> 5. With W = 1 only the last key: 6.
TEST(DecodeAttention, ReferenceHandWorked) {
  const float qkv[3] = {1.0f, 0.0f, 0.0f};
  const float k[2] = {0.0f, std::log(3.0f)}, v[2] = {2.0f, 6.0f};
  float out = 0;
  cpu::ref::decodeAttention(&out, qkv, k, v, 1, 2, 2, 1, 1, 0);
  EXPECT_NEAR(out, 5.0f, 1e-6);
  cpu::ref::decodeAttention(&out, qkv, k, v, 1, 2, 2, 1, 1, 1);
  EXPECT_NEAR(out, 6.0f, 1e-6);
}

template <typename T>
void expectCacheWriteMatchesReference(int64_t batch, int64_t heads, int64_t hd, int64_t max_seq,
                                      int64_t n, int64_t pos0, uint32_t seed) {
  SCOPED_TRACE("B=" + std::to_string(batch) + " nh=" + std::to_string(heads) +
               " hd=" + std::to_string(hd) + " S=" + std::to_string(max_seq) +
               " n=" + std::to_string(n) + " pos0=" + std::to_string(pos0));
  const int64_t C = heads * hd, size = batch * heads * max_seq * hd;
  const auto qkv = toStorage<T>(test::normalValues(batch * n * 3 * C, seed));
  GuardedBuffer<T> k(size), v(size);
  k.fillPattern(0, size);
  v.fillPattern(0, size);
  cpu::kvCacheWrite(k.data(), v.data(), qkv.data(), batch, n, pos0, max_seq, C, hd);
  EXPECT_TRUE(k.guardIntact() && v.guardIntact());
  // The reference writes the same positions into a fresh NaN-filled cache (NaN compares
  // unequal, so compare bits: written positions must match exactly, the others stay NaN).
  GuardedBuffer<float> k_ref(size), v_ref(size);
  k_ref.fillPattern(0, size);
  v_ref.fillPattern(0, size);
  const auto qkv_f = test::toFloats(qkv.data(), qkv.size());
  cpu::ref::kvCacheWrite(k_ref.data(), v_ref.data(), qkv_f.data(), batch, n, pos0, max_seq, C, hd);
  const auto k_got = test::toFloats(k.data(), size), v_got = test::toFloats(v.data(), size);
  int64_t bad = 0;
  for (int64_t i = 0; i < size; ++i) {
    const bool k_ok = std::isnan(k_ref[i]) ? std::isnan(k_got[i]) : k_got[i] == k_ref[i];
    const bool v_ok = std::isnan(v_ref[i]) ? std::isnan(v_got[i]) : v_got[i] == v_ref[i];
    bad += !k_ok + !v_ok;
  }
  EXPECT_EQ(bad, 0);
}

TEST(KvCacheWrite, MatchesReference) {
  expectCacheWriteMatchesReference<float>(1, 1, 1, 1, 1, 0, 1);
  expectCacheWriteMatchesReference<float>(2, 3, 17, 40, 17, 5, 2);
  expectCacheWriteMatchesReference<float>(3, 2, 64, 128, 1, 127, 3);
  expectCacheWriteMatchesReference<bf16>(2, 4, 3, 20, 7, 13, 4);
  expectCacheWriteMatchesReference<f16>(1, 5, 64, 255, 255, 0, 5);
}

// Prefill with kvCacheWrite, then the query of the last row: the same as row len-1 of the
// training kernel run over the len rows (so decoding sees exactly what training trained).
TEST(DecodeAttention, EqualsLastRowOfTrainingAttention) {
  for (const Shape& s : {Shape{2, 3, 17, 64, 45, 0}, Shape{1, 2, 64, 64, 64, 16},
                         Shape{3, 1, 5, 9, 9, 1}, Shape{1, 2, 8, 32, 1, 0}}) {
    SCOPED_TRACE(s.str());
    const int64_t C = s.channels();
    const auto qkv = test::normalValues(s.batch * s.len * 3 * C, 11);
    std::vector<float> out(s.batch * s.len * C), lse(s.batch * s.heads * s.len);
    cpu::attentionForward(out.data(), lse.data(), qkv.data(), s.batch, s.len, C, s.hd, s.window);
    std::vector<float> k(s.cacheSize()), v(s.cacheSize());
    cpu::kvCacheWrite(k.data(), v.data(), qkv.data(), s.batch, s.len, 0, s.max_seq, C, s.hd);
    // The last row's QKV of each sequence, as decoding holds it ([B, 3C]).
    std::vector<float> last(s.batch * 3 * C), want(s.batch * C);
    for (int64_t b = 0; b < s.batch; ++b) {
      const int64_t row = b * s.len + s.len - 1;
      std::copy_n(qkv.begin() + row * 3 * C, 3 * C, last.begin() + b * 3 * C);
      std::copy_n(out.begin() + row * C, C, want.begin() + b * C);
    }
    GuardedBuffer<float> got(s.batch * C);
    cpu::decodeAttention(got.data(), last.data(), k.data(), v.data(), s.batch, s.len, s.max_seq, C,
                         s.hd, s.window);
    EXPECT_TRUE(got.guardIntact());
    EXPECT_TRUE(allClose(got.data(), want.data(), want.size(), tol<float>(want)));
  }
}

TEST(DecodeAttention, SameBitsForAnyThreadCount) {
  const Shape s{3, 4, 64, 512, 500, 0};  // enough work to run in parallel
  const Cache<float> cache(s, 5);
  const auto qkv = test::normalValues(s.batch * 3 * s.channels(), 6);
  std::vector<float> one(s.batch * s.channels()), two(one.size());
  {
    test::ScopedThreads t(1);
    cpu::decodeAttention(one.data(), qkv.data(), cache.k.data(), cache.v.data(), s.batch, s.len,
                         s.max_seq, s.channels(), s.hd, s.window);
  }
  {
    test::ScopedThreads t(2);
    cpu::decodeAttention(two.data(), qkv.data(), cache.k.data(), cache.v.data(), s.batch, s.len,
                         s.max_seq, s.channels(), s.hd, s.window);
  }
  EXPECT_TRUE(test::sameBits(one.data(), two.data(), one.size()));
}

}  // namespace
}  // namespace kdgrid
