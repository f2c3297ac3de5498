// Distillation end to end through the `kdgrid` binary, on tiny data made by the binary itself
// (sample-corpus -> tokenizer -> prepare) and a tiny teacher trained by `kdgrid train`:
// - online distillation on grid (dp, pp, tp) = (2, 2, 2) gives the single-rank losses;
// - alpha = 0 is plain training; a resumed distillation continues exactly; the student's
//   checkpoints hold the student only;
// - teacher-logits shards are checked against an independent PyTorch GPT-2
//   (tests/distill_torch_reference.py), on 1 rank and on 8; offline distillation on (2, 2, 2)
//   gives the single-rank losses;
// - misaligned top-k shards, a teacher of another tokenizer or vocabulary exit 2;
// - eval --teacher equals the PyTorch computation and is the same on every grid.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "checkpoints/checkpoint.h"
#include "data/h5.h"
#include "data/shards.h"
#include "data/topk_shards.h"
#include "src/inference/model_checkpoint.h"
#include "src/model/params.h"
#include "tests/test_util.h"

namespace kdgrid {
namespace {

namespace fs = std::filesystem;

std::string mpirun(int np) {
  return std::string(KDGRID_MPIEXEC) + " -np " + std::to_string(np) + " ";
}

// `env -u NAME ...` removing what Open MPI's singleton init put into this process's environment
// (PMIX_*, OMPI_MCA_ess, ...): a child kdgrid or mpirun inheriting them would attach to this
// process's PMIx server instead of starting its own job. The settings the test environment
// gives every test (tests/CMakeLists.txt) stay.
std::string cleanEnvironment() {
  static const char* const kKeep[] = {"OMPI_ALLOW_RUN_AS_ROOT", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM",
                                      "OMPI_MCA_rmaps_base_oversubscribe",
                                      "OMPI_MCA_mpi_yield_when_idle"};
  std::string prefix = "env";
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    const std::string name = entry.substr(0, entry.find('='));
    if (name.rfind("OMPI_", 0) != 0 && name.rfind("PMIX_", 0) != 0) continue;
    if (std::find(std::begin(kKeep), std::end(kKeep), name) != std::end(kKeep)) continue;
    prefix += " -u " + name;
  }
  return prefix + " ";
}

// The tiny models: a 3-layer teacher and a 2-layer student of another width, so the pipeline
// splits them differently (2 + 1 and 1 + 1 layers on pp = 2).
const std::string kTeacherModel = " --n-layer 3 --n-head 4 --d-model 48 --max-seq 16";
const std::string kStudentModel = " --n-layer 2 --n-head 2 --d-model 32 --max-seq 16";

struct Result {
  int rc = -1;
  std::string output;
};

Result kdgrid(const std::string& args, int np = 1) {
  Result r;
  const std::string bin = test::kdgridBinary();
  r.rc = test::runCommand(
      cleanEnvironment() + (np > 1 ? mpirun(np) : std::string()) + bin + " " + args + " 2>&1",
      &r.output);
  return r;
}

std::vector<nlohmann::json> metrics(const std::string& run_dir) {
  std::vector<nlohmann::json> out;
  std::ifstream in(run_dir + "/metrics.jsonl");
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

double relDiff(double a, double b) {
  return std::fabs(a - b) / std::max(std::fabs(b), 1e-30);
}

// Same number of steps; loss and ce within `rtol` relative; kl within rtol relative or
// `kl_atol` (the divergence can be small while its rounding noise is absolute).
void expectSameLosses(const std::string& got_dir, const std::string& want_dir, double rtol,
                      double kl_atol) {
  const auto got = metrics(got_dir), want = metrics(want_dir);
  ASSERT_EQ(got.size(), want.size());
  ASSERT_FALSE(want.empty());
  for (size_t i = 0; i < got.size(); ++i) {
    SCOPED_TRACE("step " + std::to_string(i + 1));
    EXPECT_LE(relDiff(got[i]["loss"], want[i]["loss"]), rtol);
    EXPECT_LE(relDiff(got[i]["ce"], want[i]["ce"]), rtol);
    EXPECT_NEAR(got[i]["kl"].get<double>(), want[i]["kl"].get<double>(),
                kl_atol + rtol * want[i]["kl"].get<double>());
  }
}

std::string latestStep(const std::string& run_dir) {
  std::ifstream in(run_dir + "/checkpoints/latest");
  std::string name;
  in >> name;
  return run_dir + "/checkpoints/" + name;
}

// The tiny data and teacher every distillation test needs, made once per test suite. The tests
// come in two suites, one per CTest entry (tests/CMakeLists.txt registers each suite by name):
// DistillOnline (online distillation, resume, teacher checks, eval --teacher) and
// DistillOffline (teacher-logits shards and offline distillation).
class DistillBase : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::make_unique<test::TempDir>("kdgrid-distill");
    const std::string d = dir_->path();
    // ~30 KB of text -> ~14k tokens in shards of 3000 (several per directory).
    ASSERT_EQ(kdgrid("sample-corpus --out " + d + "/corpus.txt").rc, 0);
    ASSERT_EQ(test::runCommand("head -c 30000 " + d + "/corpus.txt > " + d + "/small.txt"), 0);
    ASSERT_EQ(
        kdgrid("tokenizer --input " + d + "/small.txt --vocab-size 300 --out " + d + "/tok.json")
            .rc,
        0);
    ASSERT_EQ(kdgrid("prepare --input " + d + "/small.txt --tokenizer " + d + "/tok.json --out " +
                     d + "/shards --val-fraction 0.1 --shard-tokens 3000")
                  .rc,
              0);
    // A teacher that has learnt something (peaked distributions), quickly.
    const Result t = kdgrid("train --data " + d + "/shards/train --run-dir " + d + "/teacher" +
                            kTeacherModel + " --steps 600 --batch-size 8 --lr 1e-2 --seed 3");
    ASSERT_EQ(t.rc, 0) << t.output;
  }
  static void TearDownTestSuite() { dir_.reset(); }

  static std::string path(const std::string& name) { return dir_->path() + "/" + name; }
  static std::string train() { return path("shards/train"); }
  static std::string val() { return path("shards/val"); }
  static std::string teacher() { return path("teacher"); }

  static std::unique_ptr<test::TempDir> dir_;
};
std::unique_ptr<test::TempDir> DistillBase::dir_;

class DistillOnline : public DistillBase {};
class DistillOffline : public DistillBase {};

std::string onlineArgs(const std::string& teacher, const std::string& data, int steps) {
  return "distill --teacher " + teacher + " --data " + data + kStudentModel + " --steps " +
         std::to_string(steps) + " --lr 3e-3 --seed 1";
}

TEST_F(DistillOnline, OnlineGridMatchesSingleRank) {
  const std::string args = onlineArgs(teacher(), train(), 20);
  const Result one = kdgrid(args + " --batch-size 4 --run-dir " + path("online1"));
  ASSERT_EQ(one.rc, 0) << one.output;
  const Result grid =
      kdgrid(args + " --batch-size 2 --dp 2 --pp 2 --tp 2 --run-dir " + path("online8"), 8);
  ASSERT_EQ(grid.rc, 0) << grid.output;
  // fp32 on both: only the summation order differs (a few ulp per step, compounding).
  expectSameLosses(path("online8"), path("online1"), 1e-5, 1e-7);

  const auto m = metrics(path("online1"));
  ASSERT_EQ(m.size(), 20u);
  for (const auto& r : m) {
    // loss = alpha T^2 kl + (1 - alpha) ce with the defaults alpha 0.5, T 2.
    EXPECT_NEAR(r["loss"].get<double>(), 2.0 * r["kl"].get<double>() + 0.5 * r["ce"].get<double>(),
                1e-12 * r["loss"].get<double>());
    EXPECT_GT(r["kl"].get<double>(), 0.0);
  }
  // The student moves towards the teacher.
  EXPECT_LT(m.back()["kl"].get<double>(), 0.8 * m.front()["kl"].get<double>());
}

// Another divergence, temperature and alpha, with gradient accumulation, on (1, 2, 2).
TEST_F(DistillOnline, OnlineJsdWithAccumulationMatchesSingleRank) {
  const std::string args = onlineArgs(teacher(), train(), 8) +
                           " --kd-loss jsd --kd-temperature 1.5 --kd-alpha 0.7 --grad-accum 2";
  ASSERT_EQ(kdgrid(args + " --batch-size 3 --run-dir " + path("jsd1")).rc, 0);
  const Result grid = kdgrid(args + " --batch-size 3 --pp 2 --tp 2 --run-dir " + path("jsd4"), 4);
  ASSERT_EQ(grid.rc, 0) << grid.output;
  expectSameLosses(path("jsd4"), path("jsd1"), 1e-5, 1e-7);
  for (const auto& r : metrics(path("jsd1")))
    EXPECT_NEAR(r["loss"].get<double>(),
                0.7 * 2.25 * r["kl"].get<double>() + 0.3 * r["ce"].get<double>(), 1e-9);
}

// alpha = 0 leaves the cross-entropy alone: the losses of `train` with the same flags.
TEST_F(DistillOnline, AlphaZeroIsPlainTraining) {
  const std::string model = kStudentModel + " --steps 6 --batch-size 4 --lr 3e-3 --seed 1";
  ASSERT_EQ(kdgrid("train --data " + train() + model + " --run-dir " + path("plain")).rc, 0);
  const Result r = kdgrid("distill --teacher " + teacher() + " --kd-alpha 0 --data " + train() +
                          model + " --run-dir " + path("alpha0"));
  ASSERT_EQ(r.rc, 0) << r.output;
  const auto got = metrics(path("alpha0")), want = metrics(path("plain"));
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    // The fused backward computes the same softmax gradient in another loop (a last partial
    // vector scalar instead of masked): a few ulp per step.
    EXPECT_LE(relDiff(got[i]["loss"], want[i]["loss"]), 1e-6) << "step " << i + 1;
    EXPECT_EQ(got[i]["loss"].get<double>(), got[i]["ce"].get<double>());
  }
}

// Interrupted after step 5 of 10 (its later checkpoint and metrics removed), then resumed
// without the student's model flags and --seed (taken from the checkpoint): the same losses as
// 10 straight steps. A student flag of another value exits 2 first. The checkpoints hold the
// student alone (its shapes, its tensors), never the teacher.
TEST_F(DistillOnline, ResumesExactlyAndCheckpointsOnlyTheStudent) {
  const std::string args = onlineArgs(teacher(), train(), 10) + " --batch-size 4";
  ASSERT_EQ(kdgrid(args + " --run-dir " + path("straight")).rc, 0);
  const std::string run = path("resumed");
  ASSERT_EQ(kdgrid(args + " --save-every 5 --run-dir " + run).rc, 0);
  fs::remove_all(run + "/checkpoints/step_00000010");
  std::ofstream(run + "/checkpoints/latest") << "step_00000005\n";
  std::vector<nlohmann::json> first = metrics(run);
  ASSERT_EQ(first.size(), 10u);
  {
    std::ofstream out(run + "/metrics.jsonl", std::ios::trunc);
    for (int i = 0; i < 5; ++i) out << first[i].dump() << "\n";
  }
  const std::string resume = "distill --teacher " + teacher() + " --data " + train() +
                             " --steps 10 --lr 3e-3 --batch-size 4 --save-every 5 --run-dir " + run;
  const Result conflict = kdgrid(resume + " --n-layer 3");
  EXPECT_EQ(conflict.rc, 2) << conflict.output;
  EXPECT_NE(conflict.output.find("--n-layer 3 differs from the checkpoint's n_layer 2"),
            std::string::npos)
      << conflict.output;
  const Result r = kdgrid(resume);
  ASSERT_EQ(r.rc, 0) << r.output;
  EXPECT_NE(r.output.find("resumed from"), std::string::npos) << r.output;
  expectSameLosses(run, path("straight"), 1e-12, 0.0);

  const std::string step = latestStep(run);
  const CheckpointMeta meta = readCheckpointMeta(step);
  const ModelConfig model = checkpointModel(meta, step);
  EXPECT_EQ(model.n_layer, 2);
  EXPECT_EQ(model.d_model, 32);
  h5::File file = h5::File::openRead(step + "/model.h5");
  const std::vector<ParamSpec> specs = gpt2ParamSpecs(model);
  for (const ParamSpec& s : specs) EXPECT_TRUE(file.contains("model/" + s.name)) << s.name;
  EXPECT_FALSE(file.contains("model/blocks.2.ln1.weight"));  // the teacher's third layer
  EXPECT_NE(meta.config_ini.find("teacher = " + teacher()), std::string::npos);
}

// teacher-logits on 1 rank (float32) and on (2, 2, 2) (float16), both checked against PyTorch;
// then offline distillation on (2, 2, 2) gives the single-rank losses.
TEST_F(DistillOffline, OfflineEndToEnd) {
  const std::string extract =
      "teacher-logits --teacher " + teacher() + " --data " + train() + " --topk 8";
  Result r = kdgrid(extract + " --logprobs-dtype float32 --out " + path("topk32"));
  ASSERT_EQ(r.rc, 0) << r.output;
  r = kdgrid(extract + " --batch-size 3 --dp 2 --pp 2 --tp 2 --out " + path("topk16"), 8);
  ASSERT_EQ(r.rc, 0) << r.output;
  const std::string script = test::sourceDir() + "/tests/distill_torch_reference.py";
  for (const char* out : {"topk32", "topk16"}) {
    std::string checked;
    EXPECT_EQ(test::runCommand("/usr/bin/python3 " + script + " topk " + latestStep(teacher()) +
                                   " " + train() + " " + path(out) + " 2>&1",
                               &checked),
              0)
        << out << ": " << checked;
  }
  // Shapes and attributes of one shard.
  const TopkShardInfo info = readTopkShardInfo(path("topk16/tokens_00000.h5"));
  const TokenShardInfo tokens = readTokenShardInfo(train() + "/tokens_00000.h5");
  EXPECT_EQ(info.n_tokens, tokens.n_tokens);
  EXPECT_EQ(info.k, 8u);
  EXPECT_TRUE(info.float16);
  EXPECT_EQ(info.temperature, 2.0);
  EXPECT_EQ(info.token_shard, "tokens_00000.h5");
  EXPECT_EQ(info.teacher_checkpoint, latestStep(teacher()));
  EXPECT_FALSE(readTopkShardInfo(path("topk32/tokens_00000.h5")).float16);

  const std::string args = "distill --teacher-logits " + path("topk32") + " --data " + train() +
                           kStudentModel + " --lr 3e-3 --seed 1 --kd-alpha 0.9";
  r = kdgrid(args + " --steps 10 --batch-size 4 --run-dir " + path("offline1"));
  ASSERT_EQ(r.rc, 0) << r.output;
  r = kdgrid(args + " --steps 10 --batch-size 2 --dp 2 --pp 2 --tp 2 --run-dir " + path("offline8"),
             8);
  ASSERT_EQ(r.rc, 0) << r.output;
  expectSameLosses(path("offline8"), path("offline1"), 1e-5, 1e-7);
  const auto m = metrics(path("offline1"));
  for (const auto& step : m) EXPECT_GT(step["kl"].get<double>(), 0.0);

  // Shards written at T = 2 serve any --kd-temperature (rescaled, kernels/cpu/kl.h).
  r = kdgrid(args + " --batch-size 4 --kd-temperature 1 --steps 2 --run-dir " + path("offlineT1"));
  ASSERT_EQ(r.rc, 0) << r.output;
  EXPECT_NE(metrics(path("offlineT1")).front()["kl"], m.front()["kl"]);
}

// One step whose global batch is the whole epoch (every window once, in whatever order): its
// loss terms are the means over all windows, which PyTorch recomputes from the student's
// weights before the step. Checks what the grid comparisons cannot: that the teacher (online)
// or the top-k row (offline) of each position is the one for that position's token. The
// student is trained first (whole epochs per step, so the data cursor is at an epoch start),
// because against an untrained, near-uniform student the mean divergence hardly depends on
// which teacher row a position meets; the distillation step resumes from it.
TEST_F(DistillOffline, FirstStepMatchesPyTorch) {
  uint64_t tokens = 0;
  for (const std::string& p : listShards(train(), kTokensFormat))
    tokens += readTokenShardInfo(p).n_tokens;
  const std::string windows = std::to_string(tokens / 17);  // max_seq + 1 = 17
  const std::string common = " --data " + train() + kStudentModel + " --batch-size " + windows;
  const Result base =
      kdgrid("train" + common + " --steps 20 --lr 1e-2 --run-dir " + path("first_base"));
  ASSERT_EQ(base.rc, 0) << base.output;
  if (!fs::exists(path("topk32"))) {
    ASSERT_EQ(kdgrid("teacher-logits --teacher " + teacher() + " --data " + train() +
                     " --topk 8 --logprobs-dtype float32 --out " + path("topk32"))
                  .rc,
              0);
  }
  struct Case {
    const char* run;
    std::string source, teacher_arg, temperature, divergence;
  };
  const std::vector<Case> cases = {
      {"first_online", "--teacher " + teacher(), latestStep(teacher()), "2", "forward_kl"},
      {"first_offline", "--teacher-logits " + path("topk32"), "topk:" + path("topk32"), "1.5",
       "jsd"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.run);
    // Step 21 from the trained student's step 20, with a learning rate too small to matter.
    fs::copy(path("first_base"), path(c.run), fs::copy_options::recursive);
    const Result r = kdgrid(
        "distill " + c.source + common + " --steps 21 --lr 1e-20 --min-lr 1e-20 --kd-temperature " +
        c.temperature + " --kd-loss " + c.divergence + " --run-dir " + path(c.run));
    ASSERT_EQ(r.rc, 0) << r.output;
    std::string out;
    ASSERT_EQ(test::runCommand("/usr/bin/python3 " + test::sourceDir() +
                                   "/tests/distill_torch_reference.py first_step " + path(c.run) +
                                   "/checkpoints/step_00000020 " + train() + " " + c.teacher_arg +
                                   " " + c.temperature + " " + c.divergence,
                               &out),
              0)
        << out;
    const nlohmann::json ref = nlohmann::json::parse(out.substr(out.rfind("\n{") + 1));
    const nlohmann::json got = metrics(path(c.run)).back();
    ASSERT_EQ(got["step"], 21);
    // fp32 against float64: ~1e-7 relative per term, averaged over ~14k rows; the top-k
    // divergence is small (~1e-3) while its rounding noise is absolute (~1e-9).
    EXPECT_LE(relDiff(got["ce"], ref["ce"]), 1e-6) << got << " vs " << ref;
    EXPECT_LE(relDiff(got["kl"], ref["kl"]), 1e-5) << got << " vs " << ref;
    EXPECT_GT(ref["kl"].get<double>(), 1e-4);
  }
}

// Writes a copy of a top-k shard with changes.
void copyTopk(const std::string& from, const std::string& to, uint64_t rows, uint32_t k,
              const std::string& token_shard, uint32_t vocab_size) {
  TopkShardInfo info = readTopkShardInfo(from);
  TopkShardReader reader(info, info.vocab_size);
  std::vector<uint32_t> ids(info.n_tokens * info.k);
  std::vector<float> lp(ids.size());
  reader.read(0, info.n_tokens, ids.data(), lp.data());
  TopkShardInfo out = info;
  out.n_tokens = rows;
  out.k = k;
  out.token_shard = token_shard;
  out.vocab_size = vocab_size;
  std::vector<uint32_t> ids2(rows * k);
  std::vector<float> lp2(rows * k);
  for (uint64_t r = 0; r < rows; ++r)
    for (uint32_t j = 0; j < k; ++j) {
      ids2[r * k + j] = ids[(r % info.n_tokens) * info.k + j % info.k];
      lp2[r * k + j] = lp[(r % info.n_tokens) * info.k + j % info.k];
    }
  TopkShardWriter writer(to, out);
  writer.write(0, rows, ids2.data(), lp2.data());
  writer.finish();
}

TEST_F(DistillOffline, MisalignedTopkShardsExit2) {
  ASSERT_EQ(kdgrid("teacher-logits --teacher " + teacher() + " --data " + train() +
                   " --topk 4 --out " + path("vtopk"))
                .rc,
            0);
  const std::string shard = "tokens_00000.h5";
  const TopkShardInfo good = readTopkShardInfo(path("vtopk/" + shard));
  struct Case {
    const char* name;
    uint64_t rows;
    uint32_t k;
    std::string token_shard;
    uint32_t vocab;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"short", good.n_tokens - 1, good.k, shard, good.vocab_size, "rows"},
      {"other_k", good.n_tokens, good.k + 1, shard, good.vocab_size, "k"},
      {"other_vocab", good.n_tokens, good.k, shard, good.vocab_size + 1, "vocab_size"},
      {"other_name", good.n_tokens, good.k, "tokens_99999.h5", good.vocab_size, "no top-k shard"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string dir = path(std::string("bad_") + c.name);
    fs::create_directories(dir);
    copyTopk(path("vtopk/" + shard), dir + "/" + shard, c.rows, c.k, c.token_shard, c.vocab);
    // The other shards unchanged (so a k that differs between shards is seen too).
    for (const auto& e : fs::directory_iterator(path("vtopk")))
      if (e.path().filename() != shard)
        fs::copy(e.path(), dir + "/" + e.path().filename().string());
    const Result r =
        kdgrid("distill --teacher-logits " + dir + " --data " + train() + kStudentModel +
               " --steps 1 --batch-size 2 --run-dir " + path(std::string("run_") + c.name));
    EXPECT_EQ(r.rc, 2) << r.output;
    EXPECT_NE(r.output.find(c.message), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(dir), std::string::npos) << r.output;
  }
  // A top-k directory per --data source.
  const Result r =
      kdgrid("distill --teacher-logits " + path("vtopk") + "," + path("vtopk") + " --data " +
             train() + kStudentModel + " --steps 1 --run-dir " + path("run_count"));
  EXPECT_EQ(r.rc, 2) << r.output;
  EXPECT_NE(r.output.find("--teacher-logits"), std::string::npos) << r.output;
}

TEST_F(DistillOnline, TeacherOfAnotherTokenizerOrVocabularyExits2) {
  // The training shards again, as if made by another tokenizer.
  const std::string other = path("other_tok");
  fs::create_directories(other);
  for (const std::string& p : listShards(train(), kTokensFormat)) {
    TokenShard s = readTokenShard(p);
    s.tokenizer_sha256 = std::string(64, 'a');
    writeTokenShard(other + "/" + fs::path(p).filename().string(), s);
  }
  Result r = kdgrid(onlineArgs(teacher(), other, 1) + " --run-dir " + path("mismatch"));
  EXPECT_EQ(r.rc, 2) << r.output;
  EXPECT_NE(r.output.find("tokenizer"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(teacher()), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(other), std::string::npos) << r.output;
  r = kdgrid("teacher-logits --teacher " + teacher() + " --data " + other + " --out " +
             path("mismatch_topk"));
  EXPECT_EQ(r.rc, 2) << r.output;
  // The student's vocabulary must be the teacher's.
  r = kdgrid(onlineArgs(teacher(), train(), 1) + " --vocab-size 320 --run-dir " + path("vocab"));
  EXPECT_EQ(r.rc, 2) << r.output;
  EXPECT_NE(r.output.find("vocab_size"), std::string::npos) << r.output;
  // Options.
  r = kdgrid(onlineArgs(teacher(), train(), 1) + " --kd-loss kl --run-dir " + path("badloss"));
  EXPECT_EQ(r.rc, 2) << r.output;
  EXPECT_NE(r.output.find("--kd-loss"), std::string::npos) << r.output;
  r = kdgrid(onlineArgs(teacher(), train(), 1) + " --teacher-logits " + path("x") + " --run-dir " +
             path("both"));
  EXPECT_EQ(r.rc, 2) << r.output;
}

nlohmann::json lastJsonLine(const std::string& output) {
  const size_t start = output.rfind("\n{");
  return nlohmann::json::parse(output.substr(start == std::string::npos ? 0 : start + 1));
}

TEST_F(DistillOnline, EvalTeacherMatchesPyTorch) {
  // A student: a few online steps.
  ASSERT_EQ(
      kdgrid(onlineArgs(teacher(), train(), 5) + " --batch-size 4 --run-dir " + path("evalstudent"))
          .rc,
      0);
  const std::string student = latestStep(path("evalstudent"));
  const std::string eval = "eval --checkpoint " + student + " --data " + val() +
                           " --batch-size 3 --teacher " + teacher();
  const Result one = kdgrid(eval);
  ASSERT_EQ(one.rc, 0) << one.output;
  const Result grid = kdgrid(eval + " --pp 2 --tp 2", 4);
  ASSERT_EQ(grid.rc, 0) << grid.output;
  const Result plain = kdgrid("eval --checkpoint " + student + " --data " + val());
  ASSERT_EQ(plain.rc, 0) << plain.output;
  std::string ref_out;
  ASSERT_EQ(test::runCommand("/usr/bin/python3 " + test::sourceDir() +
                                 "/tests/distill_torch_reference.py eval " + student + " " +
                                 latestStep(teacher()) + " " + val(),
                             &ref_out),
            0)
      << ref_out;
  const nlohmann::json ref = lastJsonLine(ref_out);
  const double tokens = ref["tokens"].get<double>();
  for (const Result* r : {&one, &grid}) {
    const nlohmann::json got = lastJsonLine(r->output);
    EXPECT_EQ(got["tokens"], ref["tokens"]);
    // fp32 model against float64 PyTorch: ~1e-7 relative per logit, averaged.
    EXPECT_LE(relDiff(got["loss"], ref["loss"]), 1e-5) << got << " vs " << ref;
    EXPECT_LE(relDiff(got["kl_to_teacher"], ref["kl_to_teacher"]), 1e-4) << got << " vs " << ref;
    // An argmax may flip only on a near-tie: allow one position.
    EXPECT_NEAR(got["top1_agreement"].get<double>(), ref["top1_agreement"].get<double>(),
                1.0 / tokens + 1e-12);
    EXPECT_GT(got["kl_to_teacher"].get<double>(), 1e-3);
  }
  EXPECT_LE(relDiff(lastJsonLine(one.output)["loss"], lastJsonLine(plain.output)["loss"]), 1e-12);
}

}  // namespace
}  // namespace kdgrid
