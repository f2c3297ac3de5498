#include "src/train/adversarial.h"

#include "src/tensor/ops.h"

#include "src/core/check.h"

namespace kdgrid {

AdversarialSums adversarialTrainStep(Gpt2Stage& model, Communicator& pp,
                                     const std::vector<MicroBatch>& micro, float grad_scale,
                                     float epsilon, float weight, LossHead& head) {
  AdversarialSums sums;
  // First stage: one [B * T, C] gradient per micro-batch, turned into its perturbation.
  std::vector<Tensor> x0(micro.size());
  sums.clean = pipelineTrainStep(model, pp, micro, (1 - weight) * grad_scale, &head,
                                 {.d_x0 = model.firstStage() ? &x0 : nullptr});
  if (model.firstStage()) {
    for (Tensor& g : x0) {
      KDGRID_CHECK(g.defined(), "no embedding gradient from the clean pass");
      ops::signScale(model.runtime(), g, epsilon);
    }
  }
  sums.adversarial = pipelineTrainStep(model, pp, micro, weight * grad_scale, &head,
                                       {.x0_delta = model.firstStage() ? &x0 : nullptr});
  return sums;
}

}  // namespace kdgrid
