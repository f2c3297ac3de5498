#include "optim/adamw.h"

namespace kdgrid {

AdamW::AdamW(const ParameterLayout& layout, const cpu::AdamWConfig& config)
    : layout_(layout),
      config_(config),
      m_(Tensor::zeros({static_cast<int64_t>(layout.totalElements())}, DType::kF32)),
      v_(Tensor::zeros({static_cast<int64_t>(layout.totalElements())}, DType::kF32)) {}

void AdamW::step(float* params, const float* grads, Tensor* compute_copy, float lr,
                 float grad_scale, int64_t step) {
  cpu::AdamWConfig config = config_;
  config.lr = lr;
  float* m = m_.data<float>();
  float* v = v_.data<float>();
  for (const LocalParam& p : layout_.params()) {
    const size_t o = p.offset;
    const bool decay = p.spec.decay;
    if (!compute_copy) {
      cpu::adamwStep<float>(params + o, m + o, v + o, grads + o, nullptr, p.numel(), config, step,
                            grad_scale, decay);
    } else if (compute_copy->dtype() == DType::kBF16) {
      cpu::adamwStep(params + o, m + o, v + o, grads + o, compute_copy->data<bf16>() + o, p.numel(),
                     config, step, grad_scale, decay);
    } else {
      cpu::adamwStep(params + o, m + o, v + o, grads + o, compute_copy->data<f16>() + o, p.numel(),
                     config, step, grad_scale, decay);
    }
  }
}

}  // namespace kdgrid
