// Data loader (data/loader.h), single process: windows, epochs, keyed shuffles, mixing counts,
// cursor resume, the split of a global batch over data-parallel ranks (two loaders with
// dp = 2, ranks 0 and 1), prefetch, and errors. Shards come from loader_test_util.h: every
// window is recognisable from its tokens.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>

#include "data/loader.h"
#include "src/core/options.h"
#include "tests/loader_test_util.h"
#include "tests/test_util.h"

namespace kdgrid {
namespace {

using test::identifyWindows;
using test::WindowId;

LoaderConfig config(std::vector<DataSource> sources, uint32_t seq_len, uint32_t micro_batch,
                    uint32_t grad_accum = 1, uint64_t seed = 0) {
  LoaderConfig c;
  c.sources = std::move(sources);
  c.seq_len = seq_len;
  c.micro_batch = micro_batch;
  c.grad_accum = grad_accum;
  c.seed = seed;
  return c;
}

std::vector<StepBatch> run(const LoaderConfig& c, DataCursor start, int steps) {
  DataLoader loader(c, start);
  std::vector<StepBatch> out;
  for (int s = 0; s < steps; ++s) out.push_back(loader.next());
  return out;
}

void expectSameBatches(const std::vector<StepBatch>& a, const std::vector<StepBatch>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t s = 0; s < a.size(); ++s) {
    EXPECT_TRUE(a[s].tokens == b[s].tokens) << "step " << s + 1 << " differs";
    EXPECT_EQ(a[s].cursor_after, b[s].cursor_after) << "step " << s + 1;
  }
}

TEST(Loader, ParseDataSources) {
  auto s = parseDataSources("a");
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].dir, "a");
  EXPECT_EQ(s[0].weight, 1.0);
  s = parseDataSources("runs/x:3, /abs/y : 0.25,z");
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].dir, "runs/x");
  EXPECT_EQ(s[0].weight, 3.0);
  EXPECT_EQ(s[1].dir, "/abs/y");
  EXPECT_EQ(s[1].weight, 0.25);
  EXPECT_EQ(s[2].dir, "z");
  EXPECT_EQ(s[2].weight, 1.0);
  s = parseDataSources("odd:name:2e0");  // the last ':' introduces the weight
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].dir, "odd:name");
  EXPECT_EQ(s[0].weight, 2.0);

  for (const char* bad : {"", " ", ",", "a,", ",a", "a,,b", "a:0", "a:-1", "a:x", "a:", ":2",
                          "a:nan", "a:inf", "a:1x", "odd:name"}) {
    for (const std::string flag : {"--data", "--val-data"}) {
      try {
        parseDataSources(bad, flag);
        ADD_FAILURE() << "accepted '" << bad << "'";
      } catch (const OptionError& e) {
        EXPECT_NE(std::string(e.what()).find(flag), std::string::npos) << e.what();
      }
    }
  }
}

// One source of four shards (50 + 37 + 100 + 13 = 200 tokens); seq_len 9 gives 22 windows,
// several straddling shard boundaries, and drops a 2-token tail.
TEST(Loader, EveryWindowOncePerEpoch) {
  test::TempDir dir;
  test::writeRecognisableSource(dir / "a", 0, {50, 37, 100, 13});
  const LoaderConfig c = config({{dir / "a", 1.0}}, 9, 2);
  DataLoader loader(c, {});
  EXPECT_EQ(loader.samplesPerEpoch(), 22u);
  EXPECT_EQ(loader.vocabSize(), test::kLoaderVocab);
  EXPECT_EQ(loader.eotToken(), test::kLoaderVocab - 1);
  EXPECT_EQ(loader.tokenizerSha256(), test::kLoaderSha);
  std::vector<std::vector<WindowId>> epochs(2);
  for (int epoch = 0; epoch < 2; ++epoch) {
    for (int step = 0; step < 11; ++step) {
      const StepBatch b = loader.next();
      ASSERT_EQ(b.tokens.size(), 2u * 9u);
      for (const WindowId& w : identifyWindows(b.tokens, 9)) epochs[epoch].push_back(w);
      const DataCursor expected = step == 10 ? DataCursor{uint64_t(epoch) + 1, 0}
                                             : DataCursor{uint64_t(epoch), 2u * (step + 1)};
      EXPECT_EQ(b.cursor_after, expected);
    }
    std::vector<WindowId> sorted = epochs[epoch];
    std::sort(sorted.begin(), sorted.end());
    std::vector<WindowId> all;
    for (uint64_t w = 0; w < 22; ++w) all.push_back({0, w});
    EXPECT_EQ(sorted, all) << "epoch " << epoch;
  }
  EXPECT_NE(epochs[0], epochs[1]) << "the shuffle does not depend on the epoch";

  // Two sources of equal size and weight: every window of each, once.
  test::writeRecognisableSource(dir / "b", 1, {99, 100});
  const LoaderConfig two = config({{dir / "a", 1.0}, {dir / "b", 1.0}}, 9, 4);
  DataLoader mixed(two, {});
  ASSERT_EQ(mixed.samplesPerEpoch(), 44u);
  std::vector<WindowId> seen;
  for (int step = 0; step < 11; ++step) {
    for (const WindowId& w : identifyWindows(mixed.next().tokens, 9)) seen.push_back(w);
  }
  std::sort(seen.begin(), seen.end());
  std::vector<WindowId> all;
  for (uint32_t s = 0; s < 2; ++s) {
    for (uint64_t w = 0; w < 22; ++w) all.push_back({s, w});
  }
  EXPECT_EQ(seen, all);
}

// Shards without tokens (augment writes one for an input shard that keeps no variant) add
// nothing, and windows run across them: the same windows as without them.
TEST(Loader, EmptyShardsAreSkipped) {
  test::TempDir dir;
  test::writeRecognisableSource(dir / "a", 0, {0, 50, 0, 0, 37, 100, 0, 13, 0});
  DataLoader loader(config({{dir / "a", 1.0}}, 9, 2), {});
  EXPECT_EQ(loader.samplesPerEpoch(), 22u);
  std::vector<WindowId> seen;
  for (int step = 0; step < 11; ++step) {
    for (const WindowId& w : identifyWindows(loader.next().tokens, 9)) seen.push_back(w);
  }
  std::sort(seen.begin(), seen.end());
  std::vector<WindowId> all;
  for (uint64_t w = 0; w < 22; ++w) all.push_back({0, w});
  EXPECT_EQ(seen, all);
}

TEST(Loader, SeedDecidesOrder) {
  test::TempDir dir;
  test::writeRecognisableSource(dir / "a", 0, {120, 80});
  const auto a = run(config({{dir / "a", 1.0}}, 8, 3, 1, 7), {}, 6);
  const auto b = run(config({{dir / "a", 1.0}}, 8, 3, 1, 7), {}, 6);
  expectSameBatches(a, b);
  const auto c = run(config({{dir / "a", 1.0}}, 8, 3, 1, 8), {}, 6);
  std::vector<WindowId> wa, wc;
  for (size_t s = 0; s < a.size(); ++s) {
    for (auto w : identifyWindows(a[s].tokens, 8)) wa.push_back(w);
    for (auto w : identifyWindows(c[s].tokens, 8)) wc.push_back(w);
    EXPECT_EQ(a[s].cursor_after, c[s].cursor_after);
  }
  EXPECT_NE(wa, wc) << "seeds 7 and 8 gave the same order";
  // The same windows, though: 18 of the 25, each once, in both.
  std::sort(wa.begin(), wa.end());
  std::sort(wc.begin(), wc.end());
  EXPECT_EQ(std::adjacent_find(wa.begin(), wa.end()), wa.end());
  EXPECT_EQ(std::adjacent_find(wc.begin(), wc.end()), wc.end());
}

// Loader A runs 7 steps; loader B starts at A's cursor after step 3 and must give steps 4..7.
// 13 windows per epoch and 3 or 4 samples per step: the epoch ends inside step 5 (3 samples)
// or step 4 (4 samples); resuming also works from a cursor written by another grid.
TEST(Loader, CursorResumeIsExact) {
  test::TempDir dir;
  test::writeRecognisableSource(dir / "a", 0, {60, 61});
  struct Case {
    uint32_t micro_batch, grad_accum, dp;
  };
  for (const Case k : {Case{3, 1, 1}, Case{1, 3, 1}, Case{2, 2, 1}, Case{1, 2, 2}}) {
    SCOPED_TRACE(
        fmt::format("micro_batch {} grad_accum {} dp {}", k.micro_batch, k.grad_accum, k.dp));
    for (uint32_t rank = 0; rank < k.dp; ++rank) {
      LoaderConfig c = config({{dir / "a", 1.0}}, 9, k.micro_batch, k.grad_accum, 3);
      c.dp = k.dp;
      c.dp_rank = rank;
      const auto a = run(c, {}, 7);
      const auto b = run(c, a[2].cursor_after, 4);
      expectSameBatches(std::vector<StepBatch>(a.begin() + 3, a.end()), b);
      EXPECT_GE(a[6].cursor_after.epoch, 1u);  // the run crossed an epoch boundary
    }
  }
}

// dp = 2 with micro_batch m: rank 0 and rank 1 hold the two halves of the global batch that
// dp = 1 with micro_batch 2m holds; the cursor moves by the whole global batch on each.
TEST(Loader, DataParallelRanksSplitTheGlobalBatch) {
  test::TempDir dir;
  test::writeRecognisableSource(dir / "a", 0, {300, 211});
  test::writeRecognisableSource(dir / "b", 1, {150});
  const std::vector<DataSource> sources = {{dir / "a", 2.0}, {dir / "b", 1.0}};
  for (uint32_t grad_accum : {1u, 3u}) {
    SCOPED_TRACE(fmt::format("grad_accum {}", grad_accum));
    LoaderConfig one = config(sources, 7, 4, grad_accum, 11);
    LoaderConfig half = config(sources, 7, 2, grad_accum, 11);
    half.dp = 2;
    DataLoader global(one, {});
    half.dp_rank = 0;
    DataLoader rank0(half, {});
    half.dp_rank = 1;
    DataLoader rank1(half, {});
    for (int step = 0; step < 12; ++step) {  // a few epochs of 63 + 31 samples
      const StepBatch g = global.next(), r0 = rank0.next(), r1 = rank1.next();
      ASSERT_EQ(r0.tokens.size(), size_t{grad_accum} * 2 * 7);
      std::vector<uint32_t> joined = r0.tokens;
      joined.insert(joined.end(), r1.tokens.begin(), r1.tokens.end());
      EXPECT_TRUE(joined == g.tokens) << "step " << step + 1;
      EXPECT_EQ(r0.cursor_after, g.cursor_after);
      EXPECT_EQ(r1.cursor_after, g.cursor_after);
      identifyWindows(joined, 7);
    }
  }
}

// Weights 3:1 over sources of 33 and 17 windows: E = 50, so A gets round(37.5) = 38 samples
// per epoch (every window once, 5 of them twice) and B round(12.5) = 13 (13 distinct windows).
TEST(Loader, MixingFollowsTheWeights) {
  test::TempDir dir;
  test::writeRecognisableSource(dir / "a", 0, {100, 100, 100});  // 300 tokens: 33 windows of 9
  test::writeRecognisableSource(dir / "b", 1, {160});            // 17 windows of 9
  DataLoader loader(config({{dir / "a", 3.0}, {dir / "b", 1.0}}, 9, 3, 1, 5), {});
  ASSERT_EQ(loader.samplesPerEpoch(), 51u);
  std::vector<std::set<WindowId>> drawn_from_b(3);  // which 13 of b's 17 windows
  for (int epoch = 0; epoch < 3; ++epoch) {
    std::map<WindowId, int> count;
    for (int step = 0; step < 17; ++step) {
      for (auto w : identifyWindows(loader.next().tokens, 9)) ++count[w];
    }
    int from_a = 0, from_b = 0, twice = 0;
    for (const auto& [w, n] : count) {
      (w.source == 0 ? from_a : from_b) += n;
      if (w.source == 0) {
        EXPECT_TRUE(n == 1 || n == 2) << "window " << w.window << " of a drawn " << n << " times";
        twice += n == 2;
      } else {
        EXPECT_EQ(n, 1) << "window " << w.window << " of b drawn " << n << " times";
        drawn_from_b[epoch].insert(w);
      }
    }
    EXPECT_EQ(from_a, 38) << "epoch " << epoch;
    EXPECT_EQ(from_b, 13) << "epoch " << epoch;
    EXPECT_EQ(twice, 5) << "epoch " << epoch;
    EXPECT_EQ(
        std::count_if(count.begin(), count.end(), [](auto& e) { return e.first.source == 0; }), 33);
  }
  // The subsample is drawn afresh each epoch (keyed by the epoch, not fixed once).
  EXPECT_FALSE(drawn_from_b[0] == drawn_from_b[1] && drawn_from_b[1] == drawn_from_b[2]);
}

TEST(Loader, PrefetchChangesNothing) {
  test::TempDir dir;
  test::writeRecognisableSource(dir / "a", 0, {90, 45});
  test::writeRecognisableSource(dir / "b", 1, {70});
  for (uint32_t rank = 0; rank < 2; ++rank) {
    LoaderConfig c = config({{dir / "a", 1.0}, {dir / "b", 0.5}}, 5, 2, 2, 9);
    c.dp = 2;
    c.dp_rank = rank;
    c.prefetch = true;
    const auto with = run(c, {1, 4}, 15);
    c.prefetch = false;
    const auto without = run(c, {1, 4}, 15);
    expectSameBatches(with, without);
  }
  // A loader destroyed with a batch in flight, or never used, shuts down cleanly.
  LoaderConfig c = config({{dir / "a", 1.0}}, 5, 2);
  { DataLoader unused(c, {}); }
  {
    DataLoader busy(c, {});
    busy.next();
  }
}

TEST(Loader, SourcesMustShareTheTokenizer) {
  test::TempDir dir;
  test::writeRecognisableSource(dir / "a", 0, {100});
  test::writeRecognisableSource(dir / "other_vocab", 1, {100}, test::kLoaderVocab / 2);
  test::writeRecognisableSource(dir / "other_sha", 1, {100}, test::kLoaderVocab,
                                std::string(64, 'f'));
  test::writeRecognisableSource(dir / "tiny", 1, {4, 4});
  test::expectUsageError(
      [&] {
        DataLoader(config({{dir / "a", 1}, {dir / "other_vocab", 1}}, 9, 1), {});
      },
      {dir / "a", dir / "other_vocab", "vocab_size"});
  test::expectUsageError(
      [&] {
        DataLoader(config({{dir / "a", 1}, {dir / "other_sha", 1}}, 9, 1), {});
      },
      {dir / "a", dir / "other_sha", "tokenizer_sha256"});
  test::expectUsageError(
      [&] {
        DataLoader(config({{dir / "a", 1}, {dir / "tiny", 1}}, 9, 1), {});
      },
      {dir / "tiny", "8 tokens"});
  test::expectUsageError(
      [&] {
        DataLoader(config({{dir / "a", 1}, {dir / "missing", 1}}, 9, 1), {});
      },
      {dir / "missing"});
  // A cursor beyond the epoch: the data changed under a checkpoint (100 tokens = 11 windows).
  test::expectUsageError([&] { DataLoader(config({{dir / "a", 1}}, 9, 1), {0, 11}); }, {"cursor"});
  LoaderConfig bad_rank = config({{dir / "a", 1}}, 9, 1);
  bad_rank.dp = 2;
  bad_rank.dp_rank = 2;
  test::expectUsageError([&] { DataLoader(bad_rank, {}); }, {"--dp"});
}

// A failure on the prefetch thread (here: the shards vanish after the loader opened them)
// comes out of next(), every time, and the loader still shuts down cleanly.
TEST(Loader, PrefetchErrorsReachTheCaller) {
  test::TempDir dir;
  test::writeRecognisableSource(dir / "a", 0, {100});
  DataLoader loader(config({{dir / "a", 1}}, 9, 2), {});
  std::filesystem::remove(dir / "a/shard_000.h5");
  for (int attempt = 0; attempt < 2; ++attempt) {
    try {
      loader.next();
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("shard_000.h5"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace kdgrid
