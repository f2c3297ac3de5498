#include "train/adversarial.h"

#include "core/check.h"

namespace kdgrid {
namespace {

// delta = epsilon * sign(g), in g's dtype (the compute dtype).
template <typename T>
void signScaled(T* delta, const T* g, int64_t n, float epsilon) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = toFloat(g[i]);
    delta[i] = T(v > 0 ? epsilon : v < 0 ? -epsilon : 0.0f);
  }
}

}  // namespace

AdversarialSums adversarialTrainStep(Gpt2Stage& model, const std::vector<MicroBatch>& micro,
                                     float grad_scale, float epsilon, float weight) {
  KDGRID_CHECK(model.firstStage() && model.lastStage(), "adversarial training needs pp = 1");
  AdversarialSums sums;
  for (const MicroBatch& mb : micro) {
    Tensor g, delta;
    {
      StageActivations acts;
      model.forward(acts, mb.inputs, nullptr, mb.B, mb.T);
      Tensor dout;
      const LossSums l =
          model.headForwardBackward(acts, mb.targets, (1 - weight) * grad_scale, &dout);
      sums.clean.ce_sum += l.ce_sum;
      sums.clean.tokens += l.tokens;
      model.backward(acts, dout, &g);
    }
    delta = Tensor::zeros(g.shape(), g.dtype());
    switch (g.dtype()) {
      case DType::kF32:
        signScaled(delta.data<float>(), g.data<float>(), g.numel(), epsilon);
        break;
      case DType::kBF16:
        signScaled(delta.data<bf16>(), g.data<bf16>(), g.numel(), epsilon);
        break;
      case DType::kF16:
        signScaled(delta.data<f16>(), g.data<f16>(), g.numel(), epsilon);
        break;
    }
    g = Tensor();
    StageActivations acts;
    model.forward(acts, mb.inputs, nullptr, mb.B, mb.T, &delta);
    Tensor dout;
    const LossSums l = model.headForwardBackward(acts, mb.targets, weight * grad_scale, &dout);
    sums.adversarial.ce_sum += l.ce_sum;
    sums.adversarial.tokens += l.tokens;
    model.backward(acts, dout);
  }
  return sums;
}

}  // namespace kdgrid
