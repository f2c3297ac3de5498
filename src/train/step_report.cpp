#include "src/train/step_report.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>

#include "src/core/check.h"
#include "src/core/log.h"
#include "src/train/evaluate.h"

namespace kdgrid {
namespace {

double peakMemoryMb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;  // ru_maxrss is in KiB on Linux
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

StepReporter::StepReporter(const TrainConfig& config, ProcessGrid& grid, int64_t global_tokens,
                           const std::string& tokenizer_sha256)
    : config_(config),
      grid_(grid),
      global_tokens_(global_tokens),
      axes_{{"dp", &grid.dpComm()},
            {"pp", &grid.ppComm()},
            {"tp", &grid.tpComm()},
            {"emb", grid.embeddingComm()}} {
  if (worldRank() == 0) metrics_ = std::make_unique<MetricsWriter>(config.run_dir);
  if (!config.val_data.empty()) {
    val_data_.emplace(config.val_data);
    KDGRID_INPUT_CHECK(val_data_->tokenizerSha256() == tokenizer_sha256,
                       "--val-data {} was tokenized with another tokenizer than --data",
                       config.val_data);
  }
}

void StepReporter::beginStep() {
  for (auto& [name, comm] : axes_) {
    if (comm) comm->resetBytesSent();
  }
}

bool StepReporter::agreeOnStop(bool stop_requested) {
  std::vector<int64_t> flags = {stop_requested ? 1 : 0};
  for (auto& [name, comm] : axes_) flags.push_back(comm ? int64_t(comm->bytesSent()) : 0);
  grid_.world().allReduceMax(flags.data(), flags.size());
  axis_bytes_.assign(flags.begin() + 1, flags.end());
  return flags[0] != 0;
}

std::optional<double> StepReporter::report(const TrainingState& state, const StepResult& r,
                                           double step_s, Gpt2Stage& model,
                                           const LossHead& head) {
  nlohmann::json record = {{"step", state.step},
                           {"tokens_seen", state.tokens_seen},
                           {"loss", r.loss},
                           {"ce", r.ce},
                           {"lr", r.lr},
                           {"grad_norm", r.grad_norm},
                           {"loss_scale", state.loss_scale},
                           {"step_time_s", step_s},
                           {"tokens_per_s", global_tokens_ / step_s},
                           {"mem_peak_mb", peakMemoryMb()},
                           {"skipped", r.skipped}};
  if (head.reportsKl()) record["kl"] = r.kl;
  for (size_t a = 0; a < axes_.size(); ++a)
    record[std::string("comm_bytes_") + axes_[a].first] = axis_bytes_[a];
  if (config_.adv_epsilon > 0) {
    record["adv_loss"] = r.adv_loss;
    if (head.reportsKl()) {
      record["adv_ce"] = r.adv_ce;
      record["adv_kl"] = r.adv_kl;
    }
  }
  std::optional<double> val_loss;
  const bool last = state.step == config_.steps;
  if (val_data_ && (last || (config_.eval_every > 0 && state.step % config_.eval_every == 0))) {
    val_loss = evaluateLoss(model, grid_, *val_data_, config_.val_tokens, config_.batch_size).loss;
    record["val_loss"] = *val_loss;
  }
  if (metrics_) metrics_->write(record);
  writeProgress(state.step, config_.steps, r.loss, global_tokens_ / step_s, step_s);
  return val_loss;
}

}  // namespace kdgrid
