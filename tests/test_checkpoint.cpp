// Checkpoints (DESIGN section 5): exact round trips, saving on one grid and loading on any
// other, grid-independent checksums, corruption detection and fallback, the directory
// protocol (latest, .tmp leftovers, pruning, a failed save) and the file contract as h5py sees
// it. Runs under mpirun with 1, 2 and 4 ranks: every grid that fits the world is tried.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <mpi.h>
#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "checkpoints/checkpoint.h"
#include "checkpoints/checkpoint_dir.h"
#include "checkpoints/checksum.h"
#include "checkpoints/verify.h"
#include "data/h5.h"
#include "src/core/log.h"
#include "src/inference/model_checkpoint.h"
#include "src/parallel/communicator.h"
#include "tests/test_util.h"

namespace kdgrid {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kSeed = 1234;

// Small, but every split is exercised: 4 heads over tp 1/2/4, d_ff 24 over tp, a vocabulary of
// 37 that tp 2 and 4 must pad (19 and 10 rows per rank), 4 layers over pp 1/2/4.
ModelConfig smallModel() {
  ModelConfig c;
  c.n_layer = 4;
  c.n_head = 4;
  c.d_model = 16;
  c.d_ff = 24;
  c.vocab_size = 37;
  c.max_seq = 8;
  return c;
}

struct Grid {
  int dp, pp, tp;
  std::string text() const { return fmt::format("{},{},{}", dp, pp, tp); }
};

// Every grid of `world` ranks the small model allows.
std::vector<Grid> gridsFor(int world, const ModelConfig& c) {
  std::vector<Grid> grids;
  for (int tp = 1; tp <= world; ++tp) {
    for (int pp = 1; pp <= world; ++pp) {
      if (world % (tp * pp) != 0 || pp > c.n_layer || c.n_head % tp || c.d_ff % tp) continue;
      grids.push_back({world / (tp * pp), pp, tp});
    }
  }
  return grids;
}

// The grid of `world` ranks that slices the most: largest pp * tp, then both axes used.
Grid mostSliced(int world, const ModelConfig& c) {
  const std::vector<Grid> grids = gridsFor(world, c);
  return *std::max_element(grids.begin(), grids.end(), [](const Grid& a, const Grid& b) {
    return std::make_pair(a.pp * a.tp, std::min(a.pp, a.tp)) <
           std::make_pair(b.pp * b.tp, std::min(b.pp, b.tp));
  });
}

// Fills every local tensor from keyed full logical tensors (drawNormal(seed, name) over the
// whole tensor, then this rank's slabs), so the same logical values result on any grid.
void fillKeyed(const ParameterLayout& layout, uint64_t seed, float* flat) {
  for (const LocalParam& p : layout.params()) {
    std::vector<float> full(p.spec.rows * p.spec.cols);
    drawNormal(seed, p.spec.name, 1.0f, full.data(), full.size());
    float* local = flat + p.offset;
    std::memset(local, 0, p.numel() * sizeof(float));
    for (const Slab& b : p.slabs) {
      for (int64_t r = 0; r < b.rows; ++r) {
        std::memcpy(local + (b.local_row0 + r) * p.local_cols,
                    full.data() + (b.row0 + r) * p.spec.cols + b.col0, b.cols * sizeof(float));
      }
    }
  }
}

// One rank's share of the model on a grid, with parameters and AdamW moments.
struct RankModel {
  RankModel(const ModelConfig& c, const Grid& g, int rank)
      : dp(g.dp),
        tp_idx(rank % g.tp),
        dp_idx(rank / g.tp % g.dp),
        pp_idx(rank / (g.tp * g.dp)),
        layout(c, g.pp, pp_idx, g.tp, tp_idx),
        params(layout.totalElements()),
        m(layout.totalElements()),
        v(layout.totalElements()) {}

  // Initialised the way training starts (params) plus keyed moments.
  void initialize(uint64_t seed) {
    initializeParameters(layout, seed, params.data());
    fillKeyed(layout, seed + 1, m.data());
    fillKeyed(layout, seed + 2, v.data());
  }
  // NaN everywhere, so a load that misses an element shows.
  void poison() {
    for (auto* buf : {&params, &m, &v}) std::fill(buf->begin(), buf->end(), std::nanf(""));
  }
  RankTensors tensors(bool with_moments = true) {
    return modelTensors(layout, dp_idx, tp_idx, pp_idx, params.data(),
                        with_moments ? m.data() : nullptr, with_moments ? v.data() : nullptr);
  }
  // ZeRO-1: this rank saves and loads only its shard [begin, end) of the moments (the rest of
  // m and v stays untouched).
  RankTensors zeroTensors() {
    const FlatShards shards(layout.totalElements(), dp);
    const size_t begin = shards.begin(dp_idx), end = shards.end(dp_idx);
    return modelTensors(layout, dp_idx, tp_idx, pp_idx, params.data(),
                        RankMoments{m.data() + begin, v.data() + begin, begin, end, true});
  }
  std::pair<size_t, size_t> zeroRange() const {
    const FlatShards shards(layout.totalElements(), dp);
    return {shards.begin(dp_idx), shards.end(dp_idx)};
  }

  int dp;
  int tp_idx, dp_idx, pp_idx;
  ParameterLayout layout;
  std::vector<float> params, m, v;
};

int worldRankNow() {
  return worldRank();
}

// The same over the elements of the local tensors inside the flat range [begin, end) only.
int countDifferencesIn(const ParameterLayout& layout, const std::vector<float>& a,
                       const std::vector<float>& b, std::pair<size_t, size_t> range,
                       const std::string& what) {
  int bad = 0;
  for (const LocalParam& p : layout.params()) {
    const size_t lo = std::max(range.first, p.offset);
    const size_t hi = std::min(range.second, p.offset + static_cast<size_t>(p.numel()));
    if (lo < hi && std::memcmp(a.data() + lo, b.data() + lo, (hi - lo) * sizeof(float)) != 0) {
      ADD_FAILURE() << what << " differs in " << p.spec.name << " on rank " << worldRankNow();
      ++bad;
    }
  }
  return bad;
}

// Bit-exact comparison of two ranks' buffers over every element of every local tensor
// (including vocabulary padding, which must be zero in both).
int countDifferences(const ParameterLayout& layout, const std::vector<float>& a,
                     const std::vector<float>& b, const std::string& what) {
  int bad = 0;
  for (const LocalParam& p : layout.params()) {
    if (std::memcmp(a.data() + p.offset, b.data() + p.offset, p.numel() * sizeof(float)) != 0) {
      ADD_FAILURE() << what << " differs in " << p.spec.name << " on rank " << worldRankNow();
      ++bad;
    }
  }
  return bad;
}

TrainingState sampleState(int64_t step) {
  TrainingState s;
  s.step = step;
  s.tokens_seen = step * 4096 + 17;
  s.loss_scale = 32768.0f;
  s.good_steps = 123 + step;
  s.adam_steps = step / 2;  // some steps skipped
  s.cursor = {3, 1000 + static_cast<uint64_t>(step)};
  s.best_val_loss = 2.718281828459045;
  return s;
}

CheckpointMeta sampleMeta(const ModelConfig& c, const Grid& g) {
  return checkpointMeta(c, g.text(), "n-layer = 4\nd-model = 16\n", std::string(64, 'a'));
}

void expectStateEq(const TrainingState& a, const TrainingState& b) {
  EXPECT_EQ(a.step, b.step);
  EXPECT_EQ(a.tokens_seen, b.tokens_seen);
  EXPECT_EQ(a.loss_scale, b.loss_scale);
  EXPECT_EQ(a.good_steps, b.good_steps);
  EXPECT_EQ(a.adam_steps, b.adam_steps);
  EXPECT_EQ(a.cursor, b.cursor);
  EXPECT_EQ(a.best_val_loss, b.best_val_loss);
}

std::string saveOn(const std::string& run_dir, const ModelConfig& c, const Grid& g, int64_t step,
                   int keep = 0, uint64_t seed = kSeed, bool zero = false) {
  RankModel model(c, g, worldRank());
  model.initialize(seed);
  return saveCheckpoint(run_dir, sampleMeta(c, g), sampleState(step),
                        zero ? model.zeroTensors() : model.tensors(), keep);
}

// Rank 0 changes the low mantissa bit of element `element` of a dataset in place (the file
// offset from H5Dget_offset: checkpoint datasets are contiguous). Collective (barrier).
void flipBit(const std::string& file, const std::string& dataset, uint64_t element) {
  if (worldRank() == 0) {
    haddr_t offset;
    {
      const h5::File f = h5::File::openRead(file);
      const h5::Dataset ds = f.openDataset(dataset);
      std::lock_guard<std::recursive_mutex> lock(h5::hdf5Mutex());
      offset = H5Dget_offset(ds.id());
    }
    ASSERT_NE(offset, HADDR_UNDEF);
    std::fstream io(file, std::ios::in | std::ios::out | std::ios::binary);
    io.seekg(static_cast<std::streamoff>(offset + 4 * element));
    char byte = 0;
    io.read(&byte, 1);
    byte ^= 1;
    io.seekp(static_cast<std::streamoff>(offset + 4 * element));
    io.write(&byte, 1);
    ASSERT_TRUE(io.good());
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

// Rank 0 edits a file with the raw C API (for damage the writer would never produce).
template <typename Fn>
void editOnRankZero(const std::string& file, Fn&& fn) {
  if (worldRank() == 0) {
    std::lock_guard<std::recursive_mutex> lock(h5::hdf5Mutex());
    hid_t id = H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    ASSERT_GE(id, 0);
    fn(id);
    ASSERT_GE(H5Fclose(id), 0);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

std::string readText(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// --- tests ---

TEST(Checkpoint, ChecksumIsPositionKeyedAndOrderFree) {
  std::vector<float> x = {1.0f, -2.5f, 0.0f, 3.25f, 1e-8f, -0.0f};
  const uint64_t whole = checksumRun(x.data(), x.size(), 0);
  // Any split into pieces adds up to the same value.
  EXPECT_EQ(checksumRun(x.data(), 2, 0) + checksumRun(x.data() + 2, 4, 2), whole);
  // As a [2, 3] tensor: blocks of columns add up too.
  EXPECT_EQ(
      checksumBlock(x.data(), 3, 0, 2, 0, 1, 3) + checksumBlock(x.data() + 1, 3, 0, 2, 1, 2, 3),
      whole);
  // Swapping two values, changing one bit, or the sign of zero changes it.
  std::vector<float> y = x;
  std::swap(y[0], y[1]);
  EXPECT_NE(checksumRun(y.data(), y.size(), 0), whole);
  y = x;
  y[5] = 0.0f;
  EXPECT_NE(checksumRun(y.data(), y.size(), 0), whole);
  // A reference value, so the algorithm cannot drift from the README and the h5py check.
  const float one = 1.0f;
  EXPECT_EQ(checksumRun(&one, 1, 0), fmix64(fmix64(0x9e3779b97f4a7c15ull) ^ 0x3f800000u));
  EXPECT_EQ(fmix64(1), 0xb456bcfc34c2cb2cull);  // MurmurHash3 fmix64(1)
}

TEST(Checkpoint, RoundTripIsExactOnEveryGrid) {
  const ModelConfig c = smallModel();
  for (const Grid& g : gridsFor(worldSize(), c)) {
    SCOPED_TRACE("grid " + g.text());
    test::TempDir dir("kdgrid-ckpt");
    RankModel saved(c, g, worldRank());
    saved.initialize(kSeed);
    const std::string step_dir =
        saveCheckpoint(dir.path(), sampleMeta(c, g), sampleState(42), saved.tensors(), 3);
    EXPECT_EQ(step_dir, (fs::path(dir.path()) / "checkpoints" / "step_00000042").string());
    EXPECT_EQ(readText(dir / "checkpoints/latest"), "step_00000042\n");

    RankModel loaded(c, g, worldRank());
    loaded.poison();
    const TrainingState state = loadCheckpoint(step_dir, loaded.tensors());
    expectStateEq(state, sampleState(42));
    countDifferences(saved.layout, saved.params, loaded.params, "params");
    countDifferences(saved.layout, saved.m, loaded.m, "m");
    countDifferences(saved.layout, saved.v, loaded.v, "v");

    const CheckpointMeta meta = readCheckpointMeta(step_dir);
    EXPECT_EQ(meta.grid, g.text());
    EXPECT_EQ(meta.config_ini, sampleMeta(c, g).config_ini);
    EXPECT_EQ(meta.tokenizer_sha256, std::string(64, 'a'));
    const ModelConfig stored = checkpointModel(meta, step_dir);
    EXPECT_EQ(stored.n_layer, c.n_layer);
    EXPECT_EQ(stored.d_ff, c.d_ff);
    EXPECT_EQ(stored.vocab_size, c.vocab_size);

    // A model-only load reads params alone.
    RankModel model_only(c, g, worldRank());
    model_only.poison();
    const TrainingState s2 = loadCheckpoint(step_dir, model_only.tensors(false));
    EXPECT_EQ(s2.step, 42);
    EXPECT_EQ(s2.tokens_seen, sampleState(42).tokens_seen);
    countDifferences(saved.layout, saved.params, model_only.params, "params (model-only load)");
  }
}

// Save on every grid, load on every grid, each with and without ZeRO-1 (moments sharded over
// dp: every rank writes and reads only its shard): each rank gets exactly the tensors a fresh
// initialisation on the loading grid gives; the stored checksums do not depend on the writer.
TEST(Checkpoint, AnyGridLoadsAnyGrid) {
  const ModelConfig c = smallModel();
  const std::vector<Grid> grids = gridsFor(worldSize(), c);
  test::TempDir dir("kdgrid-ckpt");
  std::vector<std::string> step_dirs, zero_dirs;
  for (size_t i = 0; i < grids.size(); ++i) {
    step_dirs.push_back(saveOn(dir / fmt::format("run{}", i), c, grids[i], 7));
    zero_dirs.push_back(
        saveOn(dir / fmt::format("zero{}", i), c, grids[i], 7, 0, kSeed, /*zero=*/true));
  }
  if (worldRank() == 0) {  // the same bytes whoever wrote the moments
    for (size_t i = 0; i < grids.size(); ++i) {
      const h5::File plain = h5::File::openRead(step_dirs[i] + "/optimizer.h5");
      const h5::File zero = h5::File::openRead(zero_dirs[i] + "/optimizer.h5");
      for (const auto& [group, name] : {std::pair{"v", "tok_emb"},
                                        {"m", "blocks.1.attn.qkv.weight"}, {"m", "ln_f.bias"}}) {
        SCOPED_TRACE(fmt::format("/{}/{}", group, name));
        const h5::Dataset a = plain.openGroup(group).openDataset(name);
        const h5::Dataset b = zero.openGroup(group).openDataset(name);
        EXPECT_EQ(a.read<float>(), b.read<float>());
        EXPECT_EQ(a.readIntAttribute<uint64_t>("checksum"),
                  b.readIntAttribute<uint64_t>("checksum"));
      }
    }
  }
  for (size_t i = 0; i < grids.size(); ++i) {
    for (const Grid& load_grid : grids) {
      for (const std::string& saved : {step_dirs[i], zero_dirs[i]}) {
        for (const bool zero_load : {false, true}) {
          SCOPED_TRACE("saved on " + grids[i].text() + " (" + saved + "), loaded on " +
                       load_grid.text() + (zero_load ? " with ZeRO-1" : ""));
          RankModel expected(c, load_grid, worldRank());
          expected.initialize(kSeed);
          RankModel loaded(c, load_grid, worldRank());
          loaded.poison();
          expectStateEq(
              loadCheckpoint(saved, zero_load ? loaded.zeroTensors() : loaded.tensors()),
              sampleState(7));
          countDifferences(expected.layout, expected.params, loaded.params, "params");
          if (zero_load) {
            countDifferencesIn(expected.layout, expected.m, loaded.m, loaded.zeroRange(), "m");
            countDifferencesIn(expected.layout, expected.v, loaded.v, loaded.zeroRange(), "v");
          } else {
            countDifferences(expected.layout, expected.m, loaded.m, "m");
            countDifferences(expected.layout, expected.v, loaded.v, "v");
          }
        }
      }
    }
  }
  // One process alone (serial HDF5 reads) sees the full logical tensors of a one-rank init,
  // and the checksum attributes are the algorithm applied to them, whichever grid wrote them.
  if (worldRank() == 0) {
    RankModel full(c, {1, 1, 1}, 0);
    full.initialize(kSeed);
    for (size_t i = 0; i < grids.size(); ++i) {
      SCOPED_TRACE("saved on " + grids[i].text());
      const h5::File model = h5::File::openRead(step_dirs[i] + "/model.h5");
      const h5::File optimizer = h5::File::openRead(step_dirs[i] + "/optimizer.h5");
      for (const LocalParam& p : full.layout.params()) {
        const size_t n = p.spec.rows * p.spec.cols;  // one rank: local == logical
        const struct {
          const h5::File* file;
          std::string name;
          const std::vector<float>* buf;
        } views[] = {{&model, "/model/" + p.spec.name, &full.params},
                     {&optimizer, "/m/" + p.spec.name, &full.m},
                     {&optimizer, "/v/" + p.spec.name, &full.v}};
        for (const auto& view : views) {
          const h5::Dataset ds = view.file->openDataset(view.name);
          const std::vector<float> data = ds.read<float>();
          ASSERT_EQ(data.size(), n) << view.name;
          EXPECT_EQ(std::memcmp(data.data(), view.buf->data() + p.offset, n * sizeof(float)), 0)
              << view.name;
          EXPECT_EQ(ds.readIntAttribute<uint64_t>("checksum"),
                    checksumRun(view.buf->data() + p.offset, n, 0))
              << view.name;
        }
      }
    }
  }
}

TEST(Checkpoint, CorruptionIsNamedAndRunDirFallsBack) {
  const ModelConfig c = smallModel();
  const Grid g = mostSliced(worldSize(), c);
  test::TempDir dir("kdgrid-ckpt");
  const std::string step1 = saveOn(dir.path(), c, g, 1);
  const std::string step2 = saveOn(dir.path(), c, g, 2);
  EXPECT_EQ(resolveCheckpoint(dir.path()), step2);
  EXPECT_EQ(resolveCheckpoint(step2), step2);
  EXPECT_FALSE(verifyCheckpoint(step2).has_value());

  flipBit(step2 + "/model.h5", "/model/blocks.1.mlp.fc1.weight", 5);
  const std::vector<std::string> named = {"blocks.1.mlp.fc1.weight", "checksum mismatch",
                                          "model.h5"};
  test::expectUsageError([&] { resolveCheckpoint(step2); }, named);
  // The loader checks on its own too (whole dataset, whichever ranks hold which slabs).
  RankModel model(c, g, worldRank());
  test::expectUsageError([&] { loadCheckpoint(step2, model.tensors()); }, named);

  if (worldRank() == 0) testing::internal::CaptureStderr();
  const std::optional<std::string> chosen = resolveCheckpoint(dir.path());
  if (worldRank() == 0) {
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("warning"), std::string::npos) << err;
    EXPECT_NE(err.find("blocks.1.mlp.fc1.weight"), std::string::npos) << err;
  }
  EXPECT_EQ(chosen, step1);

  // Damage the older one too (an AdamW moment this time): nothing intact is left.
  flipBit(step1 + "/optimizer.h5", "/v/ln_f.bias", 0);
  test::expectUsageError([&] { resolveCheckpoint(step1); }, {"/v/ln_f.bias", "checksum mismatch"});
  test::expectUsageError([&] { resolveCheckpoint(dir.path()); },
                         {"no intact checkpoint", "step_00000001", "step_00000002"});
}

// Loading paths read a checkpoint once: loadFirstIntact runs no whole-checkpoint verification
// before the load, so damage outside what the load reads goes unseen (a model-only load of a
// checkpoint whose AdamW moment is damaged takes it, where resolveCheckpoint, which reads
// everything, falls back), and damage inside what it reads is caught by the load itself. The
// loader is called exactly once per candidate tried.
TEST(Checkpoint, LoadingReadsOnceAndFallsBackOnItsOwnCheck) {
  const ModelConfig c = smallModel();
  const Grid g = mostSliced(worldSize(), c);
  test::TempDir dir("kdgrid-ckpt");
  const std::string step1 = saveOn(dir.path(), c, g, 1);
  const std::string step2 = saveOn(dir.path(), c, g, 2);
  flipBit(step2 + "/optimizer.h5", "/m/blocks.0.mlp.fc2.weight", 3);
  EXPECT_EQ(resolveCheckpoint(dir.path()), step1);  // the verifier read /m and fell back

  RankModel model(c, g, worldRank());
  std::vector<std::string> tried;
  auto load = [&](bool with_moments) {
    return [&, with_moments](const std::string& step_dir) {
      tried.push_back(step_dir);
      model.poison();
      loadCheckpoint(step_dir, model.tensors(with_moments));
    };
  };
  EXPECT_EQ(loadFirstIntact(findCheckpoints(dir.path()), load(false)), step2);
  EXPECT_EQ(tried, std::vector<std::string>{step2});
  RankModel expected(c, g, worldRank());
  expected.initialize(kSeed);
  countDifferences(expected.layout, expected.params, model.params, "params");

  tried.clear();
  if (worldRank() == 0) testing::internal::CaptureStderr();
  EXPECT_EQ(loadFirstIntact(findCheckpoints(dir.path()), load(true)), step1);
  if (worldRank() == 0) {
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("/m/blocks.0.mlp.fc2.weight"), std::string::npos) << err;
    EXPECT_NE(err.find("falling back"), std::string::npos) << err;
  }
  EXPECT_EQ(tried, (std::vector<std::string>{step2, step1}));
  countDifferences(expected.layout, expected.m, model.m, "m");
  // A named step directory does not fall back: exit 2 naming the dataset.
  test::expectUsageError(
      [&] { loadFirstIntact(findCheckpoints(step2), load(true)); },
      {"/m/blocks.0.mlp.fc2.weight", "checksum mismatch", "is damaged"});
}

TEST(Checkpoint, LatestMissingOrDanglingUsesNewestStepDir) {
  const ModelConfig c = smallModel();
  const Grid g = gridsFor(worldSize(), c).front();
  test::TempDir dir("kdgrid-ckpt");
  EXPECT_EQ(resolveCheckpoint(dir.path()), std::nullopt);  // no checkpoint yet
  saveOn(dir.path(), c, g, 1);
  const std::string step3 = saveOn(dir.path(), c, g, 3);
  MPI_Barrier(MPI_COMM_WORLD);
  if (worldRank() == 0) fs::remove(dir / "checkpoints/latest");
  MPI_Barrier(MPI_COMM_WORLD);
  EXPECT_EQ(resolveCheckpoint(dir.path()), step3);
  if (worldRank() == 0) std::ofstream(dir / "checkpoints/latest") << "step_00000099\n";
  MPI_Barrier(MPI_COMM_WORLD);
  EXPECT_EQ(resolveCheckpoint(dir.path()), step3);
  // The checkpoints directory itself is accepted as well.
  EXPECT_EQ(resolveCheckpoint(dir / "checkpoints"), step3);
  test::expectUsageError([&] { resolveCheckpoint(dir / "nowhere"); },
                         {"nowhere", "does not exist"});
}

TEST(Checkpoint, LeftoverTmpIsIgnoredAndRemoved) {
  const ModelConfig c = smallModel();
  const Grid g = gridsFor(worldSize(), c).front();
  test::TempDir dir("kdgrid-ckpt");
  const std::string step1 = saveOn(dir.path(), c, g, 1);
  if (worldRank() == 0) {
    // A crashed save, newer than anything complete.
    fs::create_directories(dir / "checkpoints/step_00000005.tmp");
    std::ofstream(dir / "checkpoints/step_00000005.tmp/model.h5") << "half a file";
    std::ofstream(dir / "checkpoints/latest.tmp") << "step_00000005";
  }
  MPI_Barrier(MPI_COMM_WORLD);
  EXPECT_EQ(resolveCheckpoint(dir.path()), step1);
  saveOn(dir.path(), c, g, 2);
  EXPECT_FALSE(fs::exists(dir / "checkpoints/step_00000005.tmp"));
  EXPECT_FALSE(fs::exists(dir / "checkpoints/latest.tmp"));
  EXPECT_TRUE(fs::exists(step1));
}

TEST(Checkpoint, PruneKeepsNewestAndBest) {
  const ModelConfig c = smallModel();
  const Grid g = gridsFor(worldSize(), c).front();
  test::TempDir dir("kdgrid-ckpt");
  for (int step = 1; step <= 5; ++step) {
    const std::string step_dir = saveOn(dir.path(), c, g, step, /*keep=*/2);
    if (step == 2 && worldRank() == 0) markBest(dir.path(), step_dir);
    MPI_Barrier(MPI_COMM_WORLD);
  }
  EXPECT_EQ(listStepDirs(dir / "checkpoints"),
            (std::vector<std::string>{"step_00000005", "step_00000004", "step_00000002"}));
  EXPECT_EQ(readText(dir / "checkpoints/best"), "step_00000002\n");
  EXPECT_EQ(readText(dir / "checkpoints/latest"), "step_00000005\n");

  // The same step saved again replaces it (different weights), still complete at every moment.
  const std::string again = saveOn(dir.path(), c, g, 5, 2, kSeed + 100);
  RankModel expected(c, g, worldRank());
  expected.initialize(kSeed + 100);
  RankModel loaded(c, g, worldRank());
  loaded.poison();
  loadCheckpoint(again, loaded.tensors());
  countDifferences(expected.layout, expected.params, loaded.params,
                   "params after re-saving a step");
  EXPECT_FALSE(fs::exists(again + ".tmp"));
}

TEST(Checkpoint, SaveWithoutRoomFailsCleanly) {
  const ModelConfig c = smallModel();
  const Grid g = mostSliced(worldSize(), c);
  test::TempDir dir("kdgrid-ckpt");
  const std::string step1 = saveOn(dir.path(), c, g, 1);

  // Files may not grow beyond 4 KiB on any rank (one tensor file needs ~34 KiB).
  struct rlimit old_limit;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  struct sigaction ignore {
  }, old_action{};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGXFSZ, &ignore, &old_action), 0);
  struct rlimit small = old_limit;
  small.rlim_cur = 4096;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string message;
  int exit_code = 0;
  try {
    saveOn(dir.path(), c, g, 2);
  } catch (const Error& e) {
    message = e.what();
    exit_code = e.exitCode();
  }
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &old_limit), 0);
  ASSERT_EQ(sigaction(SIGXFSZ, &old_action, nullptr), 0);

  EXPECT_EQ(exit_code, kExitFailure);
  for (const char* part : {"cannot save checkpoint", "step_00000002", "ulimit -f"}) {
    EXPECT_NE(message.find(part), std::string::npos) << message;
  }
  EXPECT_EQ(readText(dir / "checkpoints/latest"), "step_00000001\n");
  EXPECT_FALSE(fs::exists(dir / "checkpoints/step_00000002"));
  EXPECT_EQ(resolveCheckpoint(dir.path()), step1);
  RankModel loaded(c, g, worldRank());
  EXPECT_EQ(loadCheckpoint(step1, loaded.tensors()).step, 1);

  // With room again, the next save succeeds and clears the debris.
  saveOn(dir.path(), c, g, 2);
  EXPECT_EQ(readText(dir / "checkpoints/latest"), "step_00000002\n");
  EXPECT_FALSE(fs::exists(dir / "checkpoints/step_00000002.tmp"));
}

// A save that fails while writing (the file-size limit passes the up-front check but not the
// files' metadata), in a child process: HDF5 cannot carry on after a failed flush.
TEST(Checkpoint, SaveFailingMidWriteLeavesPreviousIntact) {
  test::TempDir dir("kdgrid-ckpt");
  if (worldRank() == 0) {
    const std::string helper =
        (fs::canonical("/proc/self/exe").parent_path() / "checkpoint_save_helper").string();
    // A clean environment: the child is its own one-process MPI job, not part of ours.
    const char* home = std::getenv("HOME");
    const std::string run = fmt::format(
        "env -i PATH=/usr/bin:/bin HOME={} OMPI_ALLOW_RUN_AS_ROOT=1 "
        "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 {} {}",
        home ? home : "/tmp", helper, dir.path());
    std::string output;
    ASSERT_EQ(test::runCommand(run + " 1 -1", &output), 0) << output;
    output.clear();
    EXPECT_EQ(test::runCommand(run + " 2 1024", &output), kExitFailure) << output;
    for (const char* part : {"cannot save checkpoint", "step_00000002", "optimizer.h5"}) {
      EXPECT_NE(output.find(part), std::string::npos) << output;
    }
    EXPECT_EQ(readText(dir / "checkpoints/latest"), "step_00000001\n");
    EXPECT_FALSE(fs::exists(dir / "checkpoints/step_00000002"));
    EXPECT_TRUE(fs::exists(dir / "checkpoints/step_00000002.tmp/model.h5"));  // it did get that far
  }
  MPI_Barrier(MPI_COMM_WORLD);
  EXPECT_EQ(resolveCheckpoint(dir.path()), dir / "checkpoints/step_00000001");
}

TEST(Checkpoint, LoadErrorsNameFileAndDataset) {
  const ModelConfig c = smallModel();
  const Grid g = gridsFor(worldSize(), c).front();
  test::TempDir dir("kdgrid-ckpt");
  const std::string step = saveOn(dir.path(), c, g, 1);
  RankModel model(c, g, worldRank());

  // A model whose d_ff differs: shapes do not match.
  ModelConfig wider = c;
  wider.d_ff = 32;
  RankModel wide(wider, g, worldRank());
  test::expectUsageError([&] { loadCheckpoint(step, wide.tensors()); },
                         {"model.h5", "blocks.0.mlp.fc1.weight", "shape"});
  // A model with fewer layers than the checkpoint.
  ModelConfig shallow = c;
  shallow.n_layer = 2;
  if (g.pp <= 2) {
    RankModel small(shallow, g, worldRank());
    test::expectUsageError([&] { loadCheckpoint(step, small.tensors()); },
                           {"blocks.2.", "larger than the one loading it"});
  }

  // A missing dataset.
  editOnRankZero(step + "/optimizer.h5",
                 [](hid_t f) { ASSERT_GE(H5Ldelete(f, "/m/pos_emb", H5P_DEFAULT), 0); });
  test::expectUsageError([&] { loadCheckpoint(step, model.tensors()); },
                         {"optimizer.h5", "/m/pos_emb", "missing"});
  test::expectUsageError([&] { resolveCheckpoint(step); },
                         {"optimizer.h5", "/m/pos_emb", "missing"});
  // The model-only load does not need it.
  EXPECT_EQ(loadCheckpoint(step, model.tensors(false)).step, 1);

  // A newer format version.
  editOnRankZero(step + "/model.h5", [](hid_t f) {
    hid_t attr = H5Aopen(f, "format_version", H5P_DEFAULT);
    const int64_t two = 2;
    ASSERT_GE(H5Awrite(attr, H5T_NATIVE_INT64, &two), 0);
    H5Aclose(attr);
  });
  test::expectUsageError([&] { loadCheckpoint(step, model.tensors(false)); },
                         {"model.h5", "format_version 2"});
  test::expectUsageError([&] { readCheckpointMeta(step); }, {"model.h5", "format_version 2"});

  // A missing file.
  MPI_Barrier(MPI_COMM_WORLD);
  if (worldRank() == 0) fs::remove(step + "/model.h5");
  MPI_Barrier(MPI_COMM_WORLD);
  test::expectUsageError([&] { loadCheckpoint(step, model.tensors()); },
                         {"model.h5", "no such file"});
  test::expectUsageError([&] { resolveCheckpoint(step); }, {"model.h5", "no such file"});
}

// The file contract as an independent reader sees it: names, shapes, dtypes, attributes, and
// the checksums recomputed with numpy from the README's description.
TEST(Checkpoint, H5pyReadsTheContract) {
  const ModelConfig c = smallModel();
  const Grid g = mostSliced(worldSize(), c);
  test::TempDir dir("kdgrid-ckpt");
  const std::string step = saveOn(dir.path(), c, g, 9);
  if (worldRank() == 0) {
    std::string output;
    const int rc =
        test::runCommand(fmt::format("/usr/bin/python3 {}/tests/check_checkpoint_h5py.py {} {}",
                                     test::sourceDir(), step, g.text()),
                         &output);
    EXPECT_EQ(rc, 0) << output;
    EXPECT_NE(output.find("checkpoint contract OK"), std::string::npos) << output;
  }
}

}  // namespace
}  // namespace kdgrid
