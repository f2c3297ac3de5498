#include "src/train/checkpoint_policy.h"

#include <utility>

#include "src/core/log.h"
#include "src/inference/model_checkpoint.h"
#include "src/tensor/staging.h"

namespace kdgrid {

CheckpointPolicy::CheckpointPolicy(const TrainConfig& config, CheckpointMeta meta,
                                   ProcessGrid& grid, Gpt2Stage& model,
                                   DataParallel& data_parallel, AdamW& optimizer,
                                   const WorldCollectives& world,
                                   std::optional<std::string> resumed_from)
    : config_(config),
      meta_(std::move(meta)),
      grid_(grid),
      model_(model),
      data_parallel_(data_parallel),
      optimizer_(optimizer),
      world_(world),
      resumed_from_(std::move(resumed_from)) {}

bool CheckpointPolicy::due(const TrainingState& state, bool stop) const {
  const bool last = state.step == config_.steps;
  return last || stop || (config_.save_every > 0 && state.step % config_.save_every == 0);
}

void CheckpointPolicy::save(TrainingState& state, std::optional<double> val_loss) {
  const bool improved = val_loss && (state.best_val_loss == 0 || *val_loss < state.best_val_loss);
  if (improved) state.best_val_loss = *val_loss;
  // Host views: the buffers themselves on the CPU, staged copies where the host cannot address
  // the backend's memory. With ZeRO-1 each rank writes only its shard of the moments.
  const HostView params(model_.params(), /*load=*/true);
  const CheckpointMoments moments(data_parallel_, optimizer_, /*for_save=*/true);
  last_saved_ = saveCheckpoint(
      config_.run_dir, meta_, state,
      rankTensorsFor(grid_, model_.layout(), params.as<float>(), moments.moments()),
      config_.keep_checkpoints, world_);
  if (improved && worldRank() == 0) markBest(config_.run_dir, last_saved_);
  log0("saved {}", last_saved_);
}

std::string CheckpointPolicy::lastCheckpoint() const {
  if (!last_saved_.empty()) return last_saved_;
  return resumed_from_ ? *resumed_from_ : std::string("none");
}

}  // namespace kdgrid
