// Running micro-batches through this rank's pipeline stage (DESIGN section 7: contiguous
// layer ranges per stage, 1F1B schedule over the micro-batches of a step).
#pragma once

#include <cstdint>
#include <vector>

#include "src/model/gpt2.h"
#include "src/parallel/communicator.h"
#include "src/train/loss_head.h"

namespace kdgrid {

struct MicroBatch {
  const uint32_t* inputs = nullptr;   // [B, T] (read on the first stage)
  const uint32_t* targets = nullptr;  // [B, T] (read on the last stage)
  int64_t B = 0, T = 0;
};

// Adversarial training's access to the embedding output x0 [B * T, C] of each micro-batch, on
// the first stage (ignored on the others; train/adversarial.h). Either vector, when given,
// has one entry per micro-batch.
struct EmbeddingHooks {
  const std::vector<Tensor>* x0_delta = nullptr;  // added to x0 in the forward
  std::vector<Tensor>* d_x0 = nullptr;            // receives d loss / d x0 in the backward
};

// Forward and backward of every micro-batch with the 1F1B schedule: stage s runs
// min(pp - s - 1, M) forwards first, then alternates one forward and one backward, then
// drains the remaining backwards, so at most min(pp - s, M) micro-batches hold activations
// at once, whatever M (--grad-accum). Sends are retired per micro-batch, so send buffers stay
// within that bound too: the stage output sent forward is an activation of its micro-batch
// and its send is waited for in that micro-batch's backward (done by then: the next stage
// has sent the gradient back); at most one d(stage input) send is pending, waited for just
// before the next is sent.
// Parameter gradients accumulate, d loss / d logit scaled by grad_scale. Returns the loss
// sums of this rank's micro-batches (non-zero on the last stage only). `head` (null: plain
// cross-entropy) is called at each forward and computes the loss on the last stage; it is
// ended (endStep) before the return.
LossSums pipelineTrainStep(Gpt2Stage& model, Communicator& pp, const std::vector<MicroBatch>& micro,
                           float grad_scale, LossHead* head = nullptr,
                           const EmbeddingHooks& hooks = {});

// Forward only (evaluation): loss sums on the last stage, zero elsewhere.
LossSums pipelineForward(Gpt2Stage& model, Communicator& pp, const MicroBatch& micro);

}  // namespace kdgrid
