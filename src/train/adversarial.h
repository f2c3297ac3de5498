// Online adversarial training in embedding space (train and distill: --adv-epsilon,
// --adv-weight): continuous FGSM, no projection to tokens.
//
// Per optimizer step, two passes of the pipeline schedule over the step's micro-batches with
// the run's loss head (cross-entropy for train, the distillation loss for distill):
//   1. clean: d loss / d logit scaled by (1 - W) * grad_scale; the first stage keeps
//      g_m = d clean loss / d x0 for each micro-batch m (x0 the embedding output);
//   2. adversarial: the same micro-batches with x0 + epsilon * sign(g_m), scaled by
//      W * grad_scale.
// The accumulated parameter gradient is that of (1 - W) * clean + W * adversarial. The weights
// do not change between the passes, so each g_m is the one the interleaved per-micro-batch form
// would give. The gradient does not flow through the perturbation's dependence on the weights
// (FGSM treats sign(g) as a constant). Works on any grid: only the first stage touches x0, and
// g is identical on every tp rank (the embedding output is all-reduced over tp).
#pragma once

#include <vector>

#include "src/model/gpt2.h"
#include "src/train/loss_head.h"
#include "src/train/pipeline.h"

namespace kdgrid {

struct AdversarialSums {
  LossSums clean;        // unweighted loss sums of the clean pass (last stage)
  LossSums adversarial;  // the same for the perturbed pass
};

// `head` has had beginStep for this step; each pass ends it (endStep).
AdversarialSums adversarialTrainStep(Gpt2Stage& model, Communicator& pp,
                                     const std::vector<MicroBatch>& micro, float grad_scale,
                                     float epsilon, float weight, LossHead& head);

}  // namespace kdgrid
