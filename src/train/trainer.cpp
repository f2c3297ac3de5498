#include "src/train/trainer.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>

#include "checkpoints/checkpoint.h"
#include "data/loader.h"
#include "data/shards.h"
#include "src/core/log.h"
#include "src/inference/model_checkpoint.h"
#include "src/model/gpt2.h"
#include "src/optim/adamw.h"
#include "src/tensor/backends.h"
#include "src/tensor/runtime.h"
#include "src/tensor/staging.h"
#include "src/train/checkpoint_policy.h"
#include "src/train/data_parallel.h"
#include "src/train/loss_scaler.h"
#include "src/train/resume_config.h"
#include "src/train/step_report.h"
#include "src/train/stop_signal.h"
#include "src/train/train_step.h"

namespace kdgrid {
namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

int runTraining(TrainConfig tc, ModelConfig mc, GridConfig gc, ParsedOptions options,
                const LossHeadFactory& make_head) {
  installStopHandlers();
  const std::vector<DataSource> sources = parseDataSources(tc.data);
  const TokenShardInfo first_shard =
      readTokenShardInfo(listShards(sources[0].dir, kTokensFormat)[0]);
  gc.resolve(worldSize());  // the axes alone; the model's fit to them once the model is known
  ProcessGrid grid(gc);
  // Checkpoint resolution, load and save: kdgrid's collectives in them are watched too.
  const WorldCollectives world = grid.worldCollectives();
  const std::optional<CheckpointCandidates> resume =
      resumeCandidates(tc.run_dir, tc.no_resume, world);
  mc.resolve(first_shard.vocab_size);
  if (resume) {  // the checkpoint's model and seed (src/train/resume_config.h)
    adoptCheckpointConfig(resume->dirs.front(), mc, tc.seed, options);
    mc.resolve(first_shard.vocab_size);  // its vocabulary must cover the shards' too
  }
  mc.validate();
  resolveGridFor(gc, worldSize(), mc);
  log0("{}", grid.describe());
  log0("model: {}", mc.summary());

  namespace fs = std::filesystem;
  if (worldRank() == 0) {
    fs::create_directories(fs::path(tc.run_dir) / "checkpoints");
    std::ofstream(fs::path(tc.run_dir) / "config.ini") << options.ini;
  }
  grid.world().barrier();
  log0("run directory {} (effective configuration in {}/config.ini)", tc.run_dir, tc.run_dir);

  Runtime rt(backendNamed(gc.device));
  const DType compute = tc.precision;
  Gpt2Stage model(mc, gc.pp, grid.ppRank(), grid.tpComm(), compute, tc.recompute, rt);
  const size_t n_params = model.layout().totalElements();
  DataParallel data_parallel(grid.dpComm(), n_params, gc.zero == 1);
  AdamW optimizer(rt, model.layout(),
                  cpu::AdamWConfig{.weight_decay = static_cast<float>(tc.weight_decay)},
                  data_parallel.begin(), data_parallel.end());
  if (gc.zero == 1) {
    log0("ZeRO-1: AdamW state sharded over {} data-parallel ranks ({} of {} values per rank)",
         gc.dp, data_parallel.shards().shardSize(), n_params);
  }

  TrainingState state;
  const LossScaler scaler(compute, tc.on_nan);
  state.loss_scale = scaler.initialScale();
  std::optional<std::string> resumed;
  if (resume) {
    // One read: the load verifies what it reads; a damaged `latest` falls back to older ones.
    resumed = loadFirstIntact(
        *resume,
        [&](const std::string& dir) {
          HostView params(model.params(), /*load=*/false);
          CheckpointMoments moments(data_parallel, optimizer, /*for_save=*/false);
          state = loadCheckpoint(
              dir, rankTensorsFor(grid, model.layout(), params.as<float>(), moments.moments()),
              world);
          params.store(model.params());
          moments.store();
        },
        world);
  }
  if (resumed) {
    // A checkpoint from before any step (`kdgrid import`) has no loss scale of its own.
    if (state.step == 0) state.loss_scale = scaler.initialScale();
    log0("resumed from {} at step {}", *resumed, state.step);
  } else {
    HostView params(model.params(), /*load=*/false);
    initializeParameters(model.layout(), tc.seed, params.as<float>());
    params.store(model.params());
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
  CheckpointPolicy checkpoints(tc,
                               checkpointMeta(mc, fmt::format("{},{},{}", gc.dp, gc.pp, gc.tp),
                                              options.ini, loader.tokenizerSha256()),
                               grid, model, data_parallel, optimizer, world, resumed);
  const int64_t global_tokens = int64_t(gc.dp) * tc.batch_size * tc.grad_accum * T;
  StepReporter reporter(tc, grid, global_tokens, loader.tokenizerSha256());
  TrainStepParts parts{tc, grid, model, data_parallel, optimizer, loader, *head, scaler, T,
                       global_tokens};

  while (state.step < tc.steps) {
    const auto t0 = Clock::now();
    reporter.beginStep();
    const StepResult result = trainStep(parts, state, checkpoints.lastCheckpoint());
    const double step_s = std::chrono::duration<double>(Clock::now() - t0).count();
    const bool stop = reporter.agreeOnStop(stopRequested());
    const std::optional<double> val_loss = reporter.report(state, result, step_s, model, *head);
    if (checkpoints.due(state, stop)) checkpoints.save(state, val_loss);
    if (stop) {
      log0("stop requested (signal {}): saved step {}, exiting {}", stopSignal(), state.step,
           kExitStopped);
      return kExitStopped;
    }
  }
  return kExitOk;
}

}  // namespace kdgrid
