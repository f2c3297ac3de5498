// Running micro-batches through this rank's pipeline stage (DESIGN section 7: contiguous
// layer ranges per stage, 1F1B schedule over the micro-batches of a step).
#pragma once

#include <cstdint>
#include <vector>

#include "model/gpt2.h"
#include "parallel/communicator.h"
#include "train/loss_head.h"

namespace kdgrid {

struct MicroBatch {
  const uint32_t* inputs = nullptr;   // [B, T] (read on the first stage)
  const uint32_t* targets = nullptr;  // [B, T] (read on the last stage)
  int64_t B = 0, T = 0;
};

// Forward and backward of every micro-batch with the 1F1B schedule: stage s runs
// min(pp - s - 1, M) forwards first, then alternates one forward and one backward, then
// drains the remaining backwards, so at most pp - s micro-batches hold activations at once.
// Parameter gradients accumulate, d loss / d logit scaled by grad_scale. Returns the loss
// sums of this rank's micro-batches (non-zero on the last stage only). `head` (null: plain
// cross-entropy) is called at each forward and computes the loss on the last stage.
LossSums pipelineTrainStep(Gpt2Stage& model, Communicator& pp, const std::vector<MicroBatch>& micro,
                           float grad_scale, LossHead* head = nullptr);

// Forward only (evaluation): loss sums on the last stage, zero elsewhere.
LossSums pipelineForward(Gpt2Stage& model, Communicator& pp, const MicroBatch& micro);

}  // namespace kdgrid
