#include "src/train/adversarial.h"

#include "src/core/check.h"

namespace kdgrid {
namespace {

// g <- epsilon * sign(g) in place, in g's dtype (the compute dtype).
template <typename T>
void signScaleInPlace(T* g, int64_t n, float epsilon) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = toFloat(g[i]);
    g[i] = T(v > 0 ? epsilon : v < 0 ? -epsilon : 0.0f);
  }
}

}  // namespace

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
      switch (g.dtype()) {
        case DType::kF32:
          signScaleInPlace(g.data<float>(), g.numel(), epsilon);
          break;
        case DType::kBF16:
          signScaleInPlace(g.data<bf16>(), g.numel(), epsilon);
          break;
        case DType::kF16:
          signScaleInPlace(g.data<f16>(), g.numel(), epsilon);
          break;
      }
    }
  }
  sums.adversarial = pipelineTrainStep(model, pp, micro, weight * grad_scale, &head,
                                       {.x0_delta = model.firstStage() ? &x0 : nullptr});
  return sums;
}

}  // namespace kdgrid
