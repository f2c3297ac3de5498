// Embedding: fast vs reference for every dtype (bit-exact forward), vocabulary shards that
// add up to the unsharded result, backward accumulation, finite differences of the reference.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "kernels/cpu/embedding.h"
#include "kernels/cpu/reference/embedding.h"
#include "tests/kernel_test_util.h"

namespace kdgrid {
namespace {

using test::allClose;
using test::GuardedBuffer;
using test::toFloats;

struct EmbeddingShape {
  int64_t batch, seq, channels, vocab;
};

// Small vocabularies force repeated ids (the scatter-add case); channel counts around the
// 64-wide backward slices and the vectors. Above the OpenMP threshold (rows x channels >= 2^16;
// CTest runs this at 1 and 2 threads): 4x33x1000 and 8x64x129 split the rows (forward) and the
// 64-channel slices (backward: 16 and 3 slices) over the threads; 16x80x64 splits the rows but
// is one slice, so one thread gets no backward work.
const std::vector<EmbeddingShape> kShapes = {
    {1, 1, 1, 1},      {1, 3, 17, 5},    {2, 17, 64, 7},   {3, 5, 127, 50},
    {2, 64, 255, 13}, {4, 33, 1000, 97}, {8, 64, 129, 31}, {16, 80, 64, 53}};

std::vector<uint32_t> randomIds(int64_t n, int64_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<uint32_t> dist(0, static_cast<uint32_t>(vocab - 1));
  std::vector<uint32_t> ids(n);
  for (auto& id : ids) id = dist(rng);
  return ids;
}

// Vocabulary shards [start, start + size) of `vocab` for `ranks` ranks, sizes deliberately
// unequal (the last rank takes the remainder).
std::vector<std::pair<int64_t, int64_t>> shards(int64_t vocab, int ranks) {
  std::vector<std::pair<int64_t, int64_t>> out;
  int64_t start = 0;
  for (int r = 0; r < ranks; ++r) {
    const int64_t size = r == ranks - 1 ? vocab - start : (vocab + r) / (ranks + 1);
    out.emplace_back(start, size);
    start += size;
  }
  return out;
}

template <typename T>
class EmbeddingTyped : public ::testing::Test {};
using StorageTypes = ::testing::Types<float, bf16, f16>;
TYPED_TEST_SUITE(EmbeddingTyped, StorageTypes);

// Forward: the fast kernel adds in fp32 and rounds once, like the reference followed by a
// dtype.h conversion, so the stored bits must agree exactly.
TYPED_TEST(EmbeddingTyped, ForwardMatchesReferenceExactly) {
  using T = TypeParam;
  for (const auto& s : kShapes) {
    for (int ranks : {1, 3}) {
      for (const auto& [start, local] : shards(s.vocab, ranks)) {
        for (bool add_positions : {true, false}) {
          SCOPED_TRACE(testing::Message()
                       << s.batch << "x" << s.seq << "x" << s.channels << " vocab " << s.vocab
                       << " shard " << start << "+" << local << " pos " << add_positions);
          std::mt19937 rng(static_cast<uint32_t>(s.channels + start));
          const int64_t rows = s.batch * s.seq;
          const auto ids = randomIds(rows, s.vocab, static_cast<uint32_t>(s.vocab + rows));
          std::vector<float> tok(local * s.channels), pos(s.seq * s.channels);
          test::fillUniform(tok.data(), tok.size(), rng, -1.0f, 1.0f);
          test::fillUniform(pos.data(), pos.size(), rng, -1.0f, 1.0f);
          GuardedBuffer<T> out(rows * s.channels);
          for (size_t i = 0; i < out.size(); ++i) out[i] = fromFloat<T>(9.0f);  // overwritten
          cpu::embeddingForward(out.data(), ids.data(), tok.data(),
                                add_positions ? pos.data() : nullptr, s.batch, s.seq, s.channels,
                                start, local, add_positions);
          std::vector<float> ref(out.size());
          cpu::ref::embeddingForward(ref.data(), ids.data(), tok.data(), pos.data(), s.batch, s.seq,
                                     s.channels, start, local, add_positions);
          std::vector<T> ref_t(out.size());
          for (size_t i = 0; i < ref.size(); ++i) ref_t[i] = fromFloat<T>(ref[i]);
          // Compare values (not bits) so that +0 and -0 count as equal.
          EXPECT_TRUE(allClose(toFloats(out.data(), out.size()).data(),
                               toFloats(ref_t.data(), ref_t.size()).data(), out.size(), {0, 0}));
          EXPECT_TRUE(out.guardIntact());
        }
      }
    }
  }
}

// Summing the shards' outputs (what the tensor-parallel all-reduce does) gives the unsharded
// embedding; in fp32 exactly, since each row gets its token row from one rank only.
TYPED_TEST(EmbeddingTyped, VocabShardsSumToFullEmbedding) {
  using T = TypeParam;
  const EmbeddingShape s{3, 19, 70, 41};
  const int64_t rows = s.batch * s.seq;
  const size_t n = static_cast<size_t>(rows * s.channels);
  std::mt19937 rng(8);
  const auto ids = randomIds(rows, s.vocab, 9);
  std::vector<float> tok(s.vocab * s.channels), pos(s.seq * s.channels);
  test::fillUniform(tok.data(), tok.size(), rng, -1.0f, 1.0f);
  test::fillUniform(pos.data(), pos.size(), rng, -1.0f, 1.0f);
  std::vector<float> full(n);
  cpu::ref::embeddingForward(full.data(), ids.data(), tok.data(), pos.data(), s.batch, s.seq,
                             s.channels, 0, s.vocab, true);
  std::vector<float> sum(n, 0.0f);
  int rank = 0;
  for (const auto& [start, local] : shards(s.vocab, 3)) {
    std::vector<T> out(n);
    cpu::embeddingForward(out.data(), ids.data(), tok.data() + start * s.channels, pos.data(),
                          s.batch, s.seq, s.channels, start, local, rank == 0);
    for (size_t i = 0; i < n; ++i) sum[i] += toFloat(out[i]);
    ++rank;
  }
  if constexpr (std::is_same_v<T, float>) {
    EXPECT_TRUE(test::sameBits(sum.data(), full.data(), n));
  } else {
    // The token part and the position part (|each| <= 1) can come from different ranks,
    // each rounded to T on its own: the error is relative to those parts, not to their sum.
    EXPECT_TRUE(
        allClose(sum.data(), full.data(), n, {test::storageRtol<T>(), test::storageRtol<T>()}));
  }

  // Backward: the shards' dtok rows, side by side, are the unsharded dtok.
  std::vector<T> dout(n);
  test::fillUniform(dout.data(), n, rng, -1.0f, 1.0f);
  std::vector<float> dtok_full(s.vocab * s.channels, 0.0f), dpos_full(s.seq * s.channels, 0.0f);
  cpu::embeddingBackward(dtok_full.data(), dpos_full.data(), dout.data(), ids.data(), s.batch,
                         s.seq, s.channels, 0, s.vocab);
  for (const auto& [start, local] : shards(s.vocab, 3)) {
    std::vector<float> dtok(local * s.channels, 0.0f), dpos(s.seq * s.channels, 0.0f);
    cpu::embeddingBackward(dtok.data(), dpos.data(), dout.data(), ids.data(), s.batch, s.seq,
                           s.channels, start, local);
    EXPECT_TRUE(test::sameBits(dtok.data(), dtok_full.data() + start * s.channels, dtok.size()));
    EXPECT_TRUE(test::sameBits(dpos.data(), dpos_full.data(), dpos.size()));
  }
}

TYPED_TEST(EmbeddingTyped, BackwardMatchesReference) {
  using T = TypeParam;
  for (const auto& s : kShapes) {
    for (int ranks : {1, 3}) {
      for (const auto& [start, local] : shards(s.vocab, ranks)) {
        for (bool with_pos : {true, false}) {
          SCOPED_TRACE(testing::Message()
                       << s.batch << "x" << s.seq << "x" << s.channels << " vocab " << s.vocab
                       << " shard " << start << "+" << local << " dpos " << with_pos);
          std::mt19937 rng(static_cast<uint32_t>(s.seq + local));
          const int64_t rows = s.batch * s.seq;
          const auto ids = randomIds(rows, s.vocab, static_cast<uint32_t>(s.vocab * 3 + rows));
          GuardedBuffer<T> dout(rows * s.channels);
          test::fillUniform(dout.data(), dout.size(), rng, -1.0f, 1.0f);
          // Gradients accumulate: start from non-zero values.
          GuardedBuffer<float> dtok(local * s.channels), dpos(s.seq * s.channels);
          test::fillUniform(dtok.data(), dtok.size(), rng, -1.0f, 1.0f);
          test::fillUniform(dpos.data(), dpos.size(), rng, -1.0f, 1.0f);
          std::vector<float> ref_dtok(dtok.data(), dtok.data() + dtok.size());
          std::vector<float> ref_dpos(dpos.data(), dpos.data() + dpos.size());
          const std::vector<float> dpos_before = ref_dpos;
          const std::vector<float> dout_f = toFloats(dout.data(), dout.size());
          cpu::embeddingBackward(dtok.data(), with_pos ? dpos.data() : nullptr, dout.data(),
                                 ids.data(), s.batch, s.seq, s.channels, start, local);
          cpu::ref::embeddingBackward(ref_dtok.data(), with_pos ? ref_dpos.data() : nullptr,
                                      dout_f.data(), ids.data(), s.batch, s.seq, s.channels, start,
                                      local);
          // fp32 sums of the same fp32 addends; atol for up to rows O(1) terms.
          const test::Tolerance tol{1e-6 * static_cast<double>(rows), 1e-5};
          EXPECT_TRUE(allClose(dtok.data(), ref_dtok.data(), dtok.size(), tol));
          EXPECT_TRUE(allClose(dpos.data(), ref_dpos.data(), dpos.size(), tol));
          if (!with_pos) {
            EXPECT_TRUE(test::sameBits(dpos.data(), dpos_before.data(), dpos.size()));
          }
          EXPECT_TRUE(dtok.guardIntact());
          EXPECT_TRUE(dpos.guardIntact());
        }
      }
    }
  }
}

// The reference backward against central differences of L = sum(out * R), in double, with
// a vocabulary shard so that ids outside it must get no gradient.
TEST(EmbeddingReference, BackwardMatchesFiniteDifferences) {
  // Vocabulary of 5 ids; this rank holds ids 1..3.
  const int64_t batch = 2, seq = 3, channels = 4, start = 1, local = 3;
  const int64_t rows = batch * seq;
  const std::vector<uint32_t> ids = {0, 1, 2, 2, 4, 3};
  std::mt19937 rng(4);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<double> tok(local * channels), pos(seq * channels), r(rows * channels);
  for (auto& v : tok) v = u(rng);
  for (auto& v : pos) v = u(rng);
  for (auto& v : r) v = u(rng);
  auto loss = [&](const std::vector<double>& t, const std::vector<double>& p) {
    std::vector<double> out(rows * channels);
    cpu::ref::embeddingForward(out.data(), ids.data(), t.data(), p.data(), batch, seq, channels,
                               start, local, true);
    double l = 0;
    for (size_t i = 0; i < out.size(); ++i) l += out[i] * r[i];
    return l;
  };
  std::vector<double> dtok(tok.size(), 0.0), dpos(pos.size(), 0.0);
  cpu::ref::embeddingBackward(dtok.data(), dpos.data(), r.data(), ids.data(), batch, seq, channels,
                              start, local);
  const double h = 1e-6;
  for (size_t i = 0; i < tok.size(); ++i) {
    auto tp = tok, tm = tok;
    tp[i] += h;
    tm[i] -= h;
    EXPECT_NEAR(dtok[i], (loss(tp, pos) - loss(tm, pos)) / (2 * h), 1e-8) << "dtok " << i;
  }
  for (size_t i = 0; i < pos.size(); ++i) {
    auto pp = pos, pm = pos;
    pp[i] += h;
    pm[i] -= h;
    EXPECT_NEAR(dpos[i], (loss(tok, pp) - loss(tok, pm)) / (2 * h), 1e-8) << "dpos " << i;
  }
  // Local row 1 (id 2) appears twice: its gradient is the sum of two rows of r.
  for (int64_t c = 0; c < channels; ++c) {
    EXPECT_NEAR(dtok[1 * channels + c], r[2 * channels + c] + r[3 * channels + c], 1e-15);
  }
}

}  // namespace
}  // namespace kdgrid
