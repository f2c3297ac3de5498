#include "src/train/trainer.h"

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "checkpoints/checkpoint.h"
#include "data/loader.h"
#include "data/shards.h"
#include "src/core/fault_injector.h"
#include "src/core/log.h"
#include "src/inference/model_checkpoint.h"
#include "src/model/gpt2.h"
#include "src/optim/adamw.h"
#include "src/tensor/ops.h"
#include "src/tensor/runtime.h"
#include "src/train/adversarial.h"
#include "src/train/data_parallel.h"
#include "src/train/evaluate.h"
#include "src/train/metrics.h"
#include "src/train/pipeline.h"
#include "src/train/stop_signal.h"

namespace kdgrid {
namespace {

using Clock = std::chrono::steady_clock;

double peakMemoryMb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;  // ru_maxrss is in KiB on Linux
}

// fp16 dynamic loss scaling: halve on overflow (step skipped), double after this many clean
// steps. 2^16 start and a 1000-step window follow common mixed-precision practice.
constexpr float kInitialLossScale = 65536.0f;
constexpr int64_t kLossScaleWindow = 1000;

// Sum of squared gradients this rank is responsible for in the global norm, over the flat
// range [begin, end) it owns (everything, or its ZeRO shard): tensors replicated over tp are
// counted by tp rank 0 only, and tok_emb (held by the first and last stage, gradients already
// summed) by the first stage only.
double localGradSquares(const Gpt2Stage& model, const float* grads, int tp_rank, size_t begin,
                        size_t end) {
  double sum = 0;
  for (const LocalParam& p : model.layout().params()) {
    if (p.tp_replicated && tp_rank != 0) continue;
    if (p.spec.name == "tok_emb" && !model.firstStage()) continue;
    const size_t lo = std::max(begin, p.offset);
    const size_t hi = std::min(end, p.offset + static_cast<size_t>(p.numel()));
    if (lo < hi) sum += cpu::sumSquares(grads + lo, static_cast<int64_t>(hi - lo));
  }
  return sum;
}

// Cuts a step's windows of T + 1 tokens into micro-batches of inputs (first T) and targets
// (last T); the vectors own the tokens.
std::vector<MicroBatch> splitWindows(const StepBatch& batch, int batch_size, int64_t T,
                                     std::vector<std::vector<uint32_t>>& inputs,
                                     std::vector<std::vector<uint32_t>>& targets) {
  const size_t n_micro = batch.tokens.size() / (size_t(batch_size) * (T + 1));
  inputs.assign(n_micro, std::vector<uint32_t>(batch_size * T));
  targets.assign(n_micro, std::vector<uint32_t>(batch_size * T));
  std::vector<MicroBatch> micro;
  for (size_t m = 0; m < n_micro; ++m) {
    const uint32_t* windows = batch.tokens.data() + m * batch_size * (T + 1);
    for (int b = 0; b < batch_size; ++b) {
      std::copy_n(windows + b * (T + 1), T, inputs[m].begin() + b * T);
      std::copy_n(windows + b * (T + 1) + 1, T, targets[m].begin() + b * T);
    }
    micro.push_back({inputs[m].data(), targets[m].data(), batch_size, T});
  }
  return micro;
}

void writeProgress(int64_t step, int64_t steps, double loss, double tok_s, double step_s) {
  if (worldRank() != 0 || !isatty(STDERR_FILENO)) return;
  const double eta = (steps - step) * step_s;
  std::fprintf(stderr, "\r[kdgrid] step %lld/%lld  loss %.4f  %.0f tok/s  ETA %02d:%02d   ",
               static_cast<long long>(step), static_cast<long long>(steps), loss, tok_s,
               int(eta / 60), int(eta) % 60);
  if (step == steps) std::fprintf(stderr, "\n");
  std::fflush(stderr);
}

}  // namespace

int runTraining(const TrainConfig& tc, ModelConfig mc, GridConfig gc, const std::string& config_ini,
                const LossHeadFactory& make_head) {
  installStopHandlers();
  const std::vector<DataSource> sources = parseDataSources(tc.data);
  const TokenShardInfo first_shard =
      readTokenShardInfo(listShards(sources[0].dir, kTokensFormat)[0]);
  mc.resolve(first_shard.vocab_size);
  mc.validate();
  resolveGridFor(gc, worldSize(), mc);
  ProcessGrid grid(gc);
  log0("{}", grid.describe());
  log0("model: {}", mc.summary());

  namespace fs = std::filesystem;
  if (worldRank() == 0) {
    fs::create_directories(fs::path(tc.run_dir) / "checkpoints");
    std::ofstream(fs::path(tc.run_dir) / "config.ini") << config_ini;
  }
  grid.world().barrier();
  log0("run directory {} (effective configuration in {}/config.ini)", tc.run_dir, tc.run_dir);

  Runtime rt;
  const DType compute = tc.precision;
  Gpt2Stage model(mc, gc.pp, grid.ppRank(), grid.tpComm(), compute, tc.recompute, rt);
  const size_t n_params = model.layout().totalElements();
  DataParallel data_parallel(grid.dpComm(), n_params, gc.zero == 1);
  AdamW optimizer(model.layout(),
                  cpu::AdamWConfig{.weight_decay = static_cast<float>(tc.weight_decay)},
                  data_parallel.begin(), data_parallel.end());
  if (gc.zero == 1) {
    log0("ZeRO-1: AdamW state sharded over {} data-parallel ranks ({} of {} values per rank)",
         gc.dp, data_parallel.shards().shardSize(), n_params);
  }

  TrainingState state;
  state.loss_scale = compute == DType::kF16 ? kInitialLossScale : 1.0f;
  std::optional<std::string> resume;
  // Checkpoint resolution, load and save: kdgrid's collectives in them are watched too.
  const WorldCollectives world = grid.worldCollectives();
  if (!tc.no_resume) resume = resolveCheckpoint(tc.run_dir, world);
  if (resume) {
    FullMoments moments(data_parallel, optimizer);
    const float fresh_loss_scale = state.loss_scale;
    state = loadCheckpoint(
        *resume, rankTensorsFor(grid, model.layout(), model.params(), moments.m(), moments.v()),
        world);
    moments.keepShard();
    // A checkpoint from before any step (`kdgrid import`) has no loss scale of its own.
    if (state.step == 0) state.loss_scale = fresh_loss_scale;
    log0("resumed from {} at step {}", *resume, state.step);
  } else {
    initializeParameters(model.layout(), tc.seed, model.params());
  }
  model.syncComputeWeights();
  if (state.step >= tc.steps) {
    log0("run already at step {} of --steps {}: nothing to do", state.step, tc.steps);
    return kExitOk;
  }

  const int64_t T = mc.max_seq;
  LoaderConfig lc;
  lc.sources = sources;
  lc.seq_len = static_cast<uint32_t>(T + 1);
  lc.seed = tc.seed;
  lc.micro_batch = tc.batch_size;
  lc.grad_accum = tc.grad_accum;
  lc.dp = gc.dp;
  lc.dp_rank = grid.dpRank();
  DataLoader loader(lc, state.cursor);
  TrainingSetup setup{tc, mc, grid, model, rt, compute, sources, loader};
  std::unique_ptr<LossHead> head =
      make_head ? make_head(setup) : std::make_unique<CrossEntropyHead>(model);
  const CheckpointMeta meta = checkpointMeta(mc, fmt::format("{},{},{}", gc.dp, gc.pp, gc.tp),
                                             config_ini, loader.tokenizerSha256());

  std::unique_ptr<MetricsWriter> metrics;
  if (worldRank() == 0) metrics = std::make_unique<MetricsWriter>(tc.run_dir);
  const int64_t global_tokens = int64_t(gc.dp) * tc.batch_size * tc.grad_accum * T;
  std::optional<TokenStream> val_data;
  if (!tc.val_data.empty()) {
    val_data.emplace(tc.val_data);
    KDGRID_INPUT_CHECK(val_data->tokenizerSha256() == loader.tokenizerSha256(),
                       "--val-data {} was tokenized with another tokenizer than --data",
                       tc.val_data);
  }

  std::string last_saved;
  // The communicators whose byte counters a step reports (metrics comm_bytes_*).
  std::vector<std::pair<const char*, Communicator*>> axes = {{"dp", &grid.dpComm()},
                                                             {"pp", &grid.ppComm()},
                                                             {"tp", &grid.tpComm()},
                                                             {"emb", grid.embeddingComm()}};
  while (state.step < tc.steps) {
    const auto t0 = Clock::now();
    for (auto& [name, comm] : axes) {
      if (comm) comm->resetBytesSent();
    }
    // 1. Data: this dp rank's grad_accum micro-batches of the global batch.
    StepBatch batch = loader.next();
    head->beginStep(batch);
    std::vector<std::vector<uint32_t>> inputs, targets;
    std::vector<MicroBatch> micro = splitWindows(batch, tc.batch_size, T, inputs, targets);

    // 2. Forward and backward through the pipeline; gradients accumulate, scaled so their
    //    sum over the global batch is the gradient of the mean loss (times the loss scale).
    model.zeroGrads();
    const float grad_scale = state.loss_scale / static_cast<float>(global_tokens);
    LossSums sums;
    LossSums adv_sums;  // the perturbed pass under adversarial training
    if (tc.adv_epsilon > 0) {
      const AdversarialSums a = adversarialTrainStep(
          model, grid.ppComm(), micro, grad_scale, static_cast<float>(tc.adv_epsilon),
          static_cast<float>(tc.adv_weight), *head);
      sums = a.clean;
      adv_sums = a.adversarial;
    } else {
      sums = pipelineTrainStep(model, grid.ppComm(), micro, grad_scale, head.get());
    }
    FaultInjector* faults = faultInjector();
    if (faults && faults->poisonStep(state.step + 1) && worldRank() == 0) {  // sums reach all
      sums.ce_sum = std::nan("");
      model.grads()[0] = std::nanf("");
    }

    // 3. Reduce: tied embedding between first and last stage, replicas over dp (ZeRO: each
    //    dp rank gets the sum of its shard only), the loss.
    if (Communicator* emb = grid.embeddingComm()) {
      Tensor g = model.grad("tok_emb");
      emb->allReduceSum(g.data<float>(), g.numel());
    }
    data_parallel.reduceGradients(model.grads());
    double loss_sums[4] = {sums.ce_sum, sums.kl_sum, adv_sums.ce_sum, adv_sums.kl_sum};
    grid.dpComm().allReduceSum(loss_sums, 4);
    grid.ppComm().allReduceSum(loss_sums, 4);  // only the last stage has a loss
    const double ce = loss_sums[0] / global_tokens, kl = loss_sums[1] / global_tokens;
    const double adv_ce = loss_sums[2] / global_tokens, adv_kl = loss_sums[3] / global_tokens;
    // The head's objective on the perturbed pass (cross-entropy, or the distillation loss).
    const double adv_loss = head->combine(adv_ce, adv_kl);
    // The objective: (1 - W) clean + W adversarial under adversarial training.
    const double loss = tc.adv_epsilon > 0
                            ? (1 - tc.adv_weight) * head->combine(ce, kl) + tc.adv_weight * adv_loss
                            : head->combine(ce, kl);

    // 4. Update: global norm (each parameter counted once), clip, fp16 overflow, AdamW on
    //    this rank's range, then (ZeRO) the updated shards to every dp rank.
    double squares = localGradSquares(model, model.grads(), grid.tpRank(), data_parallel.begin(),
                                      data_parallel.end());
    data_parallel.sumOverShards(squares);
    grid.tpComm().allReduceSum(&squares, 1);
    grid.ppComm().allReduceSum(&squares, 1);
    const double grad_norm = std::sqrt(squares) / state.loss_scale;  // unscaled
    const double lr = learningRate(tc, state.step);
    // loss and grad_norm are sums over every rank: all ranks take the same branch.
    const bool overflow = !std::isfinite(grad_norm) || !std::isfinite(loss);
    if (overflow && compute != DType::kF16) {
      if (tc.on_nan == OnNan::kStop) {
        throw Error(kExitFailure,
                    fmt::format("step {}: the loss ({}) or gradient norm ({}) is not finite; "
                                "stopping without saving (--on-nan stop; the last checkpoint is "
                                "{})",
                                state.step + 1, loss, grad_norm,
                                !last_saved.empty() ? last_saved
                                : resume            ? *resume
                                                    : std::string("none")),
                    /*on_every_rank=*/true);
      }
      log0("warning: step {}: the loss ({}) or gradient norm ({}) is not finite; update skipped "
           "(--on-nan skip)",
           state.step + 1, loss, grad_norm);
    } else if (overflow) {
      // Skip the step: weights and optimizer state stay as they are.
      state.loss_scale /= 2;
      state.good_steps = 0;
      log0("step {}: gradient overflow at loss scale {}, step skipped, scale halved",
           state.step + 1, state.loss_scale * 2);
    } else {
      const double clip =
          tc.grad_clip > 0 && grad_norm > tc.grad_clip ? tc.grad_clip / grad_norm : 1.0;
      optimizer.step(model.params(), model.grads(), model.computeCopy(), static_cast<float>(lr),
                     static_cast<float>(clip / state.loss_scale), ++state.adam_steps);
      if (data_parallel.zero()) {
        data_parallel.gatherParameters(model.params());
        model.syncComputeWeights();
      }
      if (compute == DType::kF16 && ++state.good_steps >= kLossScaleWindow) {
        state.loss_scale *= 2;
        state.good_steps = 0;
      }
    }
    state.step += 1;
    state.tokens_seen += global_tokens;
    state.cursor = batch.cursor_after;
    const double step_s = std::chrono::duration<double>(Clock::now() - t0).count();
    // One reduction over all ranks: whether any rank was asked to stop, and the most bytes
    // any rank sent this step on each axis (evaluation and checkpoints come after).
    std::vector<int64_t> flags = {stopRequested() ? 1 : 0};
    for (auto& [name, comm] : axes) flags.push_back(comm ? int64_t(comm->bytesSent()) : 0);
    grid.world().allReduceMax(flags.data(), flags.size());
    const bool stop = flags[0] != 0;

    nlohmann::json record = {{"step", state.step},
                             {"tokens_seen", state.tokens_seen},
                             {"loss", loss},
                             {"ce", ce},
                             {"lr", lr},
                             {"grad_norm", grad_norm},
                             {"loss_scale", state.loss_scale},
                             {"step_time_s", step_s},
                             {"tokens_per_s", global_tokens / step_s},
                             {"mem_peak_mb", peakMemoryMb()},
                             {"skipped", overflow}};
    if (head->reportsKl()) record["kl"] = kl;
    for (size_t a = 0; a < axes.size(); ++a)
      record[std::string("comm_bytes_") + axes[a].first] = flags[a + 1];
    if (tc.adv_epsilon > 0) {
      record["adv_loss"] = adv_loss;
      if (head->reportsKl()) {
        record["adv_ce"] = adv_ce;
        record["adv_kl"] = adv_kl;
      }
    }
    const bool last = state.step == tc.steps;
    if (val_data && (last || (tc.eval_every > 0 && state.step % tc.eval_every == 0))) {
      const EvalResult val = evaluateLoss(model, grid, *val_data, tc.val_tokens, tc.batch_size);
      record["val_loss"] = val.loss;
    }
    if (metrics) metrics->write(record);
    writeProgress(state.step, tc.steps, loss, global_tokens / step_s, step_s);

    const bool save = last || stop || (tc.save_every > 0 && state.step % tc.save_every == 0);
    if (save) {
      const bool improved =
          record.contains("val_loss") &&
          (state.best_val_loss == 0 || record["val_loss"].get<double>() < state.best_val_loss);
      if (improved) state.best_val_loss = record["val_loss"].get<double>();
      FullMoments moments(data_parallel, optimizer);
      moments.gather();
      last_saved = saveCheckpoint(
          tc.run_dir, meta, state,
          rankTensorsFor(grid, model.layout(), model.params(), moments.m(), moments.v()),
          tc.keep_checkpoints, world);
      if (improved && worldRank() == 0) markBest(tc.run_dir, last_saved);
      log0("saved {}", last_saved);
    }
    if (stop) {
      log0("stop requested (signal {}): saved step {}, exiting {}", stopSignal(), state.step,
           kExitStopped);
      return kExitStopped;
    }
  }
  return kExitOk;
}

}  // namespace kdgrid
