#include "src/optim/adamw.h"

#include <algorithm>

#include "src/core/check.h"

namespace kdgrid {

AdamW::AdamW(const ParameterLayout& layout, const cpu::AdamWConfig& config, size_t begin,
             size_t end)
    : layout_(layout),
      config_(config),
      begin_(begin),
      end_(end),
      m_(Tensor::zeros({static_cast<int64_t>(end - begin)}, DType::kF32)),
      v_(Tensor::zeros({static_cast<int64_t>(end - begin)}, DType::kF32)) {
  KDGRID_CHECK(begin <= end && end <= layout.totalElements(),
               "AdamW range [{}, {}) outside the {} parameters", begin, end,
               layout.totalElements());
}

void AdamW::step(float* params, const float* grads, Tensor* compute_copy, float lr,
                 float grad_scale, int64_t step) {
  cpu::AdamWConfig config = config_;
  config.lr = lr;
  for (const LocalParam& p : layout_.params()) {
    // The part of this tensor inside the owned range (weight decay is per tensor).
    const size_t lo = std::max(begin_, p.offset);
    const size_t hi = std::min(end_, p.offset + static_cast<size_t>(p.numel()));
    if (lo >= hi) continue;
    const int64_t n = static_cast<int64_t>(hi - lo);
    float* m = m_.data<float>() + (lo - begin_);
    float* v = v_.data<float>() + (lo - begin_);
    const bool decay = p.spec.decay;
    if (!compute_copy) {
      cpu::adamwStep<float>(params + lo, m, v, grads + lo, nullptr, n, config, step, grad_scale,
                            decay);
    } else if (compute_copy->dtype() == DType::kBF16) {
      cpu::adamwStep(params + lo, m, v, grads + lo, compute_copy->data<bf16>() + lo, n, config,
                     step, grad_scale, decay);
    } else {
      cpu::adamwStep(params + lo, m, v, grads + lo, compute_copy->data<f16>() + lo, n, config, step,
                     grad_scale, decay);
    }
  }
}

}  // namespace kdgrid
