// Online adversarial training in embedding space (train and distill: --adv-epsilon,
// --adv-weight): continuous FGSM, no projection to tokens.
//
// Per micro-batch: the clean forward and backward (d loss / d logit scaled by (1 - W) *
// grad_scale) also yields g = d clean loss / d x0, x0 the embedding output; the adversarial
// pass reruns the micro-batch with x0 + epsilon * sign(g) and backpropagates it scaled by
// W * grad_scale, so the accumulated parameter gradient is that of
// (1 - W) * clean + W * adversarial. The gradient does not flow through the perturbation's
// dependence on the weights (FGSM treats sign(g) as a constant). Pipeline parallelism is not
// supported (pp = 1); tp and dp work as for plain steps (g is identical on every tp rank).
#pragma once

#include <vector>

#include "model/gpt2.h"
#include "train/pipeline.h"

namespace kdgrid {

struct AdversarialSums {
  LossSums clean;        // unweighted cross-entropy sums of the clean passes
  LossSums adversarial;  // the same for the perturbed passes
};

AdversarialSums adversarialTrainStep(Gpt2Stage& model, const std::vector<MicroBatch>& micro,
                                     float grad_scale, float epsilon, float weight);

}  // namespace kdgrid
