// One optimizer step of `train` and `distill` on this rank (llm.c's loop body): micro-batches,
// pipeline forward/backward (and the adversarial pass), gradient and loss reductions over the
// grid, the loss scaler's verdict, the AdamW update.
#pragma once

#include <cstdint>
#include <string>

#include "checkpoints/checkpoint.h"
#include "data/loader.h"
#include "src/model/gpt2.h"
#include "src/optim/adamw.h"
#include "src/parallel/grid.h"
#include "src/train/config.h"
#include "src/train/data_parallel.h"
#include "src/train/loss_head.h"
#include "src/train/loss_scaler.h"

namespace kdgrid {

// What a step works on; built once per run (runTraining).
struct TrainStepParts {
  const TrainConfig& config;
  ProcessGrid& grid;
  Gpt2Stage& model;
  DataParallel& data_parallel;
  AdamW& optimizer;
  DataLoader& loader;
  LossHead& head;
  const LossScaler& scaler;
  int64_t seq_len;        // T: tokens per window input (max_seq)
  int64_t global_tokens;  // target tokens of the global batch (dp * batch * grad_accum * T)
};

// A step's figures, equal on every rank (global means per target token, nats).
struct StepResult {
  double loss = 0;  // the objective the gradients are of
  double ce = 0, kl = 0;  // clean pass: cross-entropy, divergence (distill)
  double adv_loss = 0, adv_ce = 0, adv_kl = 0;  // perturbed pass (--adv-epsilon > 0)
  double lr = 0;
  double grad_norm = 0;  // global, unscaled, before clipping
  bool skipped = false;  // the update was not applied (non-finite loss or gradients)
};

// Runs optimizer step state.step + 1 and advances `state` (step, tokens, cursor, loss scale,
// AdamW steps). `last_checkpoint` is named if --on-nan stop ends the run.
StepResult trainStep(TrainStepParts& parts, TrainingState& state,
                     const std::string& last_checkpoint);

}  // namespace kdgrid
