// What a run reports after each optimizer step (DESIGN section 3): the stop agreement and the
// bytes each grid axis sent (one world reduction), the validation loss on evaluation steps,
// metrics.jsonl / metrics.prom (global rank 0), and the progress line on a terminal.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "checkpoints/checkpoint.h"
#include "data/token_stream.h"
#include "src/model/gpt2.h"
#include "src/parallel/grid.h"
#include "src/train/config.h"
#include "src/train/loss_head.h"
#include "src/train/metrics.h"
#include "src/train/train_step.h"

namespace kdgrid {

class StepReporter {
 public:
  // Opens metrics.jsonl (rank 0) and --val-data (which must share --data's tokenizer).
  StepReporter(const TrainConfig& config, ProcessGrid& grid, int64_t global_tokens,
               const std::string& tokenizer_sha256);

  // Before the step: the communicators' byte counters restart.
  void beginStep();
  // After the step, on every rank: one reduction over all ranks of whether any rank was asked
  // to stop (returned) and of the most bytes any rank sent on each axis this step (evaluation
  // and checkpoints come after, so they are not counted).
  bool agreeOnStop(bool stop_requested);
  // The step's metrics line (validation first when due: every --eval-every steps and after the
  // last). Collective (evaluation). Returns the validation loss when evaluated.
  std::optional<double> report(const TrainingState& state, const StepResult& result,
                               double step_s, Gpt2Stage& model, const LossHead& head);

 private:
  const TrainConfig& config_;
  ProcessGrid& grid_;
  int64_t global_tokens_;
  std::unique_ptr<MetricsWriter> metrics_;  // rank 0 only
  std::optional<TokenStream> val_data_;
  // The communicators whose byte counters a step reports (metrics comm_bytes_*).
  std::vector<std::pair<const char*, Communicator*>> axes_;
  std::vector<int64_t> axis_bytes_;  // [axes_]: the most any rank sent, this step
};

}  // namespace kdgrid
