// Golden test: kdgrid's GPT-2 (fp32; CPU and the guarded test device) against an independent PyTorch reference,
// tests/golden/gpt2_reference.py, which rebuilds the model from DESIGN sections 4 and 5 alone.
//
// For a tiny model (2 layers, d_model 32, 4 heads, vocab 61, max_seq 16), with full causal
// attention and with a window of 5:
//   1. in process: Gpt2Stage forward, LM head + cross-entropy and backward on known windows;
//      the logits, the mean loss and every parameter's gradient are compared tensor by tensor
//      with the float64 reference;
//   2. end to end: `kdgrid train` runs 5 optimizer steps (warmup, cosine, clipping, AdamW with
//      decoupled weight decay) on a token shard written here; metrics.jsonl's losses, gradient
//      norms and rates and the final checkpoint's parameters are compared with the reference's
//      5 steps on the same windows (the data loader's own choice, asked for step by step).
// The float32 reference is computed too: its distance to float64 is printed beside kdgrid's
// as a yardstick for what float32 rounding alone gives.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <span>
#include <string>
#include <tuple>

#include "checkpoints/checkpoint.h"
#include "data/h5.h"
#include "data/loader.h"
#include "data/shards.h"
#include "kernels/guarded/guarded_backend.h"
#include "src/inference/model_checkpoint.h"
#include "src/model/gpt2.h"
#include "src/parallel/grid.h"
#include "src/tensor/staging.h"
#include "tests/test_util.h"

namespace kdgrid {
namespace {

constexpr uint64_t kSeed = 11;
constexpr uint32_t kVocab = 61;
constexpr int kGradWindows = 3;  // windows of the in-process gradient check (B)
constexpr int kTrainBatch = 4;   // --batch-size of the training run (G)
constexpr int kTrainSteps = 5;
constexpr int kWarmupSteps = 2;    // steps 0-1 warm up, 2-4 follow the cosine
constexpr double kLr = 2e-3;       // large enough that 5 steps move every weight visibly
constexpr int kShardWindows = 10;  // 5 steps x 4 windows = 2 epochs of 10 windows
constexpr char kSha[] = "5b0c4f3e2d1a09f8e7d6c5b4a3928170615f4e3d2c1b0a9f8e7d6c5b4a392817";

// --- Tolerances: fp32 kdgrid against the float64 reference ---
// u = 2^-24 = 6.0e-8 (fp32 unit roundoff). The longest reductions are dot products of
// K <= 128 terms (d_ff) and weight gradients summed over N = 48 positions; fp32 accumulation
// bounds their relative error by K u = 7.6e-6 in the worst case (random rounding gives about
// sqrt(K) u = 7e-7). Two blocks chain about a dozen such ops, each well conditioned at these
// scales (LayerNorm and softmax have bounded gain), so values stay within a few sqrt(K) u
// typically and ~K u at worst, relative to the tensor's own scale. Errors are measured as
// max |kdgrid - ref| / max |ref| over a tensor, because GEMM rounding scales with the
// magnitudes summed, not with each (possibly cancelling) output element. Measured on the
// development machine (AVX-512): logits 1.5e-7, gradients <= 5.4e-7 (torch's own float32
// run is as far from float64), so each bound below leaves a margin of >= 10x over what was
// seen and still fails on any formula change (LayerNorm eps, GELU form, window off by one,
// head layout: all >= 1e-3).
//
// Logits: the last dot product has K = 32 terms (2e-6 = K u) on top of the blocks' errors.
constexpr double kLogitTol = 5e-6;
// Gradients: the forward errors propagated back through the transposed chain: K u.
constexpr double kGradTol = 1e-5;
// Loss: the log of an fp32 sum of 61 exponentials (relative error <= 61 u = 3.7e-6, which the
// log turns into an absolute error of the same size on a loss of ~4.1: <= 9e-7 relative)
// plus the logits' errors, averaged over the positions in double. Measured: <= 6e-9.
constexpr double kLossRelTol = 1e-6;
// The gradient norm: a root of a sum of squares of the gradients above (relative ~kGradTol).
constexpr double kGradNormRelTol = 1e-5;
// Training losses: parameters after k steps differ by < 2e-6 (below), which moves a loss of
// ~4 with gradient norm ~1.5 by far less than the per-step loss bound; same bound.
constexpr double kTrainLossRelTol = 1e-6;
// Final parameters, absolute. AdamW's update m_hat / (sqrt(v_hat) + eps) is a ratio of the
// gradient to its own size, so an element whose gradient is comparable to the tensor's
// rounding error (~1e-6 of its scale) can move by a noticeable fraction of lr with an
// arbitrary sign. Measured worst: 1.6e-6 = 8e-4 lr. 1e-5 = 5e-3 lr still catches e.g. a
// missing weight decay (5.7e-5 here), a clip not applied (4.6e-4) or a wrong schedule.
constexpr double kFinalParamTol = 1e-5;
// The attention K bias has a gradient of exactly 0 (softmax ignores a shift shared by all
// keys): the reference keeps it at 0 (up to float64 noise) while kdgrid's fp32 noise, of
// arbitrary sign and size ~u times the bias gradient scale, is normalised by AdamW into
// moves of up to lr * noise / (noise + eps) per step. Measured: 3.7e-6. Bounded by 5 % of
// one full step per step.
constexpr double kKeyBiasTol = kTrainSteps * 0.05 * kLr;

ModelConfig tinyModel(int attn_window) {
  ModelConfig c;
  c.n_layer = 2;
  c.n_head = 4;
  c.d_model = 32;
  c.d_ff = 128;
  c.vocab_size = kVocab;
  c.max_seq = 16;
  c.attn_window = attn_window;
  return c;
}

// Deterministic token ids in [0, kVocab), independent of the model's seed.
std::vector<uint32_t> knownTokens(size_t n) {
  std::mt19937 gen(20240611);
  std::vector<uint32_t> ids(n);
  for (auto& id : ids) id = gen() % kVocab;
  return ids;
}

// Largest |got - ref| over a tensor and the largest |ref|, for the scale-relative error.
struct MaxError {
  double max_abs = 0, ref_scale = 0;
  double relative() const { return max_abs / std::max(ref_scale, 1e-30); }
};

template <typename Got, typename Ref>
MaxError compare(std::span<const Got> got, std::span<const Ref> ref) {
  MaxError e;
  EXPECT_EQ(got.size(), ref.size());
  for (size_t i = 0; i < std::min(got.size(), ref.size()); ++i) {
    const double diff = std::abs(double(got[i]) - double(ref[i]));
    e.max_abs = std::isnan(diff) ? INFINITY : std::max(e.max_abs, diff);
    e.ref_scale = std::max(e.ref_scale, std::abs(double(ref[i])));
  }
  return e;
}

std::vector<double> readDoubles(const h5::File& f, const std::string& name) {
  return f.openDataset(name).read<double>();
}

// Local parameter values [local_rows * local_cols] as a span (tp = 1: the full tensor).
std::span<const float> tensorOf(const float* flat, const LocalParam& p) {
  return {flat + p.offset, static_cast<size_t>(p.numel())};
}

// (attention window, device): the CPU backend, and the guarded test device
// (kernels/guarded/guarded_backend.h), whose memory the host code cannot touch: the same
// comparison passing there shows the model and the trainer reach tensor data only through the
// ops and the staging calls.
class Golden : public ::testing::TestWithParam<std::tuple<int, std::string>> {};

// The backend called `device`; the guarded one made once per process (its SIGSEGV handler and
// pool are process-wide).
Backend& goldenBackend(const std::string& device) {
  if (device == "cpu") return hostBackend();
  static guarded::GuardedBackend guarded(size_t{1} << 32);
  return guarded;
}

// The binary that runs `kdgrid train`: kdgrid-test carries the guarded device.
std::string trainBinary(const std::string& device) {
  if (device == "cpu") return test::kdgridBinary();
  const char* bin = std::getenv("KDGRID_TEST_BIN");
  return bin ? bin : test::kdgridBinary() + "-test";
}

TEST_P(Golden, MatchesPyTorchReference) {
  test::TempDir dir("kdgrid-golden");
  const auto& [window, device] = GetParam();
  const ModelConfig mc = tinyModel(window);
  const int64_t T = mc.max_seq;
  GridConfig gc{.dp = 1, .pp = 1, .tp = 1};
  resolveGridFor(gc, 1, mc);
  ProcessGrid grid(gc);
  Runtime rt(goldenBackend(device));
  Gpt2Stage model(mc, 1, 0, grid.tpComm(), DType::kF32, Recompute::kNone, rt);
  // The initial weights, on the host (through a staged copy where the backend needs one).
  std::vector<float> initial(model.layout().totalElements());
  initializeParameters(model.layout(), kSeed, initial.data());
  copyFromHost(model.params(), initial.data());

  // The initial weights as model.h5 (what `kdgrid train --seed kSeed` starts from, too).
  const CheckpointMeta meta = checkpointMeta(mc, "1,1,1", "", kSha);
  const std::string init_dir = saveCheckpoint(
      dir / "init", meta, TrainingState{}, rankTensorsFor(grid, model.layout(), initial.data()), 0);

  // Known tokens: the gradient windows are the stream's first windows; the training shard
  // holds kShardWindows windows plus a tail the loader must drop.
  const std::vector<uint32_t> tokens = knownTokens(kShardWindows * (T + 1) + 7);
  TokenShard shard;
  shard.tokens = tokens;
  shard.doc_offsets = {0, tokens.size()};
  shard.vocab_size = kVocab;
  shard.eot_token = kVocab - 1;
  shard.tokenizer_sha256 = kSha;
  std::filesystem::create_directories(dir / "data");
  writeTokenShard(dir / "data/tokens_000.h5", shard);

  // The windows of each training step, as the trainer's loader hands them out.
  LoaderConfig lc;
  lc.sources = parseDataSources(dir / "data");
  lc.seq_len = static_cast<uint32_t>(T + 1);
  lc.seed = kSeed;
  lc.micro_batch = kTrainBatch;
  lc.prefetch = false;
  DataLoader loader(lc, DataCursor{});
  std::vector<uint32_t> train_windows;
  for (int s = 0; s < kTrainSteps; ++s) {
    const StepBatch b = loader.next();
    train_windows.insert(train_windows.end(), b.tokens.begin(), b.tokens.end());
  }
  {
    h5::File f = h5::File::create(dir / "windows.h5");
    f.writeDataset<uint32_t>("grad_windows", std::span(tokens.data(), kGradWindows * (T + 1)),
                             {kGradWindows, uint64_t(T + 1)}, h5::ElemType::kU32);
    f.writeDataset<uint32_t>("train_windows", std::span<const uint32_t>(train_windows),
                             {kTrainSteps, kTrainBatch, uint64_t(T + 1)}, h5::ElemType::kU32);
    f.close();
  }

  // The reference.
  const std::string hyper =
      fmt::format("--lr {} --warmup-steps {} --steps {} --weight-decay 0.1 --grad-clip 1.0", kLr,
                  kWarmupSteps, kTrainSteps);
  std::string out;
  const int rc = test::runCommand(
      fmt::format("/usr/bin/python3 {}/tests/golden/gpt2_reference.py --model {}/model.h5 "
                  "--windows {} --out {} {}",
                  test::sourceDir(), init_dir, dir / "windows.h5", dir / "ref.h5", hyper),
      &out);
  ASSERT_EQ(rc, 0) << out;
  const h5::File ref = h5::File::openRead(dir / "ref.h5");

  // --- 1. Forward, loss and gradients in process ---
  std::vector<uint32_t> inputs(kGradWindows * T), targets(kGradWindows * T);
  for (int b = 0; b < kGradWindows; ++b) {
    std::copy_n(tokens.begin() + b * (T + 1), T, inputs.begin() + b * T);
    std::copy_n(tokens.begin() + b * (T + 1) + 1, T, targets.begin() + b * T);
  }
  StageActivations acts;
  model.forward(acts, inputs.data(), nullptr, kGradWindows, T);
  std::vector<float> logits(kGradWindows * T * kVocab);
  for (int64_t row = 0; row < kGradWindows * T; ++row) {
    model.logitsAt(acts, row, logits.data() + row * kVocab);
  }
  model.grads().zero();
  Tensor dout;
  const LossSums sums =
      model.headForwardBackward(acts, targets.data(), 1.0f / (kGradWindows * T), &dout);
  model.backward(acts, dout);
  ASSERT_EQ(sums.tokens, kGradWindows * T);

  const MaxError logit_err = compare<float, double>(logits, readDoubles(ref, "f64/logits"));
  const MaxError logit_err32 =
      compare<double, double>(readDoubles(ref, "f32/logits"), readDoubles(ref, "f64/logits"));
  std::printf("logits: kdgrid %.3g, torch fp32 %.3g (scale-relative max error)\n",
              logit_err.relative(), logit_err32.relative());
  EXPECT_LE(logit_err.relative(), kLogitTol) << "logits";

  const double loss = sums.ce_sum / sums.tokens;
  const double ref_loss = readDoubles(ref, "f64/loss")[0];
  const double ref_loss32 = readDoubles(ref, "f32/loss")[0];
  std::printf("loss %.9f: kdgrid rel error %.3g, torch fp32 %.3g\n", ref_loss,
              std::abs(loss - ref_loss) / ref_loss, std::abs(ref_loss32 - ref_loss) / ref_loss);
  EXPECT_NEAR(loss, ref_loss, kLossRelTol * ref_loss) << "mean cross-entropy";

  double worst_grad = 0;
  const std::vector<float> grads = toHost<float>(model.grads());
  for (const LocalParam& p : model.layout().params()) {
    const std::string name = "f64/grads/" + p.spec.name;
    const MaxError e = compare<float, double>(tensorOf(grads.data(), p), readDoubles(ref, name));
    const MaxError e32 = compare<double, double>(readDoubles(ref, "f32/grads/" + p.spec.name),
                                                 readDoubles(ref, name));
    EXPECT_LE(e.relative(), kGradTol)
        << "gradient of " << p.spec.name << ": max |diff| " << e.max_abs << " at scale "
        << e.ref_scale << " (torch fp32: " << e32.relative() << ")";
    worst_grad = std::max(worst_grad, e.relative());
    std::printf("  grad %-26s kdgrid %.3g  torch fp32 %.3g\n", p.spec.name.c_str(), e.relative(),
                e32.relative());
  }
  std::printf("gradients: worst scale-relative error %.3g\n", worst_grad);

  // --- 2. Five optimizer steps through `kdgrid train` ---
  const std::string run = dir / "run";
  const int train_rc = test::runCommand(
      fmt::format("{} train --data {} --run-dir {} --n-layer {} --n-head {} --d-model {} --d-ff {} "
                  "--max-seq {} --attn-window {} --batch-size {} --seed {} --precision fp32 {} "
                  "--device {}",
                  trainBinary(device), dir / "data", run, mc.n_layer, mc.n_head, mc.d_model,
                  mc.d_ff, mc.max_seq, mc.attn_window, kTrainBatch, kSeed, hyper, device),
      &out);
  ASSERT_EQ(train_rc, 0) << out;

  std::ifstream metrics(run + "/metrics.jsonl");
  std::vector<nlohmann::json> records;
  for (std::string line; std::getline(metrics, line);)
    records.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(records.size(), size_t(kTrainSteps));
  const std::vector<double> ref_losses = readDoubles(ref, "f64/train/loss");
  const std::vector<double> ref_norms = readDoubles(ref, "f64/train/grad_norm");
  const std::vector<double> ref_lrs = readDoubles(ref, "f64/train/lr");
  const std::vector<double> ref_losses32 = readDoubles(ref, "f32/train/loss");
  for (int s = 0; s < kTrainSteps; ++s) {
    const double l = records[s]["loss"], n = records[s]["grad_norm"], lr = records[s]["lr"];
    std::printf(
        "step %d: loss %.9f (ref %.9f, rel err %.3g; torch fp32 %.3g), grad_norm rel err %.3g\n",
        s + 1, l, ref_losses[s], std::abs(l - ref_losses[s]) / ref_losses[s],
        std::abs(ref_losses32[s] - ref_losses[s]) / ref_losses[s],
        std::abs(n - ref_norms[s]) / ref_norms[s]);
    EXPECT_NEAR(l, ref_losses[s], kTrainLossRelTol * ref_losses[s]) << "loss of step " << s + 1;
    EXPECT_NEAR(n, ref_norms[s], kGradNormRelTol * ref_norms[s]) << "grad_norm of step " << s + 1;
    EXPECT_NEAR(lr, ref_lrs[s], 1e-12 * kLr) << "lr of step " << s + 1;
  }
  // The reference's losses must move, or the comparison above would not test the updates.
  EXPECT_GT(std::abs(ref_losses.back() - ref_losses.front()),
            100 * kTrainLossRelTol * ref_losses[0]);

  // The final parameters, as the step-5 checkpoint stores them.
  const std::string last = fmt::format("{}/checkpoints/step_{:08d}", run, kTrainSteps);
  const h5::File ckpt = h5::File::openRead(last + "/model.h5");
  double worst_param = 0, worst_key_bias = 0;
  for (const LocalParam& p : model.layout().params()) {
    std::vector<float> got = ckpt.openDataset("model/" + p.spec.name).read<float>();
    std::vector<double> want = readDoubles(ref, "f64/train/final/" + p.spec.name);
    std::vector<double> want32 = readDoubles(ref, "f32/train/final/" + p.spec.name);
    std::vector<float> start(tensorOf(initial.data(), p).begin(),
                             tensorOf(initial.data(), p).end());
    if (p.spec.name.ends_with("attn.qkv.bias")) {
      // Rows [C, 2C) are the K bias (see kKeyBiasTol): checked on their own, then cut out.
      const int64_t C = mc.d_model;
      const MaxError k = compare<float, double>(std::span(got).subspan(C, C),
                                                std::span<const double>(want).subspan(C, C));
      EXPECT_LE(k.max_abs, kKeyBiasTol) << "K bias of " << p.spec.name;
      worst_key_bias = std::max(worst_key_bias, k.max_abs);
      for (auto* v : {&got, &start}) v->erase(v->begin() + C, v->begin() + 2 * C);
      for (auto* v : {&want, &want32}) v->erase(v->begin() + C, v->begin() + 2 * C);
    }
    const MaxError e = compare<float, double>(got, want);
    const MaxError e32 = compare<double, double>(want32, want);
    // How far the reference moved the tensor: the comparison must see more than the noise.
    const MaxError moved = compare<float, double>(start, want);
    EXPECT_LE(e.max_abs, kFinalParamTol)
        << "parameter " << p.spec.name << " after " << kTrainSteps
        << " steps (torch fp32: " << e32.max_abs << ", moved " << moved.max_abs << ")";
    EXPECT_GT(moved.max_abs, kLr) << p.spec.name << " did not move in the reference";
    worst_param = std::max(worst_param, e.max_abs);
    std::printf("  final %-26s kdgrid %.3g  torch fp32 %.3g  (moved %.3g)\n", p.spec.name.c_str(),
                e.max_abs, e32.max_abs, moved.max_abs);
  }
  std::printf("final parameters: worst max |diff| %.3g (K bias %.3g)\n", worst_param,
              worst_key_bias);
}

INSTANTIATE_TEST_SUITE_P(AttentionWindow, Golden,
                         ::testing::Values(std::tuple<int, std::string>{0, "cpu"},
                                           std::tuple<int, std::string>{5, "cpu"},
                                           std::tuple<int, std::string>{0, "guarded"}),
                         [](const auto& info) {
                           return fmt::format("window{}_{}", std::get<0>(info.param),
                                              std::get<1>(info.param));
                         });

}  // namespace
}  // namespace kdgrid
