#include "src/optim/adamw.h"

#include <algorithm>

#include "src/core/check.h"
#include "src/tensor/ops.h"

namespace kdgrid {

AdamW::AdamW(Runtime& rt, const ParameterLayout& layout, const cpu::AdamWConfig& config,
             size_t begin, size_t end)
    : rt_(rt),
      layout_(layout),
      config_(config),
      begin_(begin),
      end_(end),
      m_(rt.zeros({static_cast<int64_t>(end - begin)}, DType::kF32)),
      v_(rt.zeros({static_cast<int64_t>(end - begin)}, DType::kF32)) {
  KDGRID_CHECK(begin <= end && end <= layout.totalElements(),
               "AdamW range [{}, {}) outside the {} parameters", begin, end,
               layout.totalElements());
}

void AdamW::step(Tensor& params, const Tensor& grads, Tensor* compute_copy, float lr,
                 float grad_scale, int64_t step) {
  cpu::AdamWConfig config = config_;
  config.lr = lr;
  for (const LocalParam& p : layout_.params()) {
    // The part of this tensor inside the owned range (weight decay is per tensor).
    const size_t lo = std::max(begin_, p.offset);
    const size_t hi = std::min(end_, p.offset + static_cast<size_t>(p.numel()));
    if (lo >= hi) continue;
    const int64_t n = static_cast<int64_t>(hi - lo), at = static_cast<int64_t>(lo);
    Tensor w = params.rows(at, n), m = m_.rows(at - begin_, n), v = v_.rows(at - begin_, n);
    Tensor copy = compute_copy ? compute_copy->rows(at, n) : Tensor();
    ops::adamwStep(rt_, w, m, v, grads.rows(at, n), compute_copy ? &copy : nullptr, config, step,
                   grad_scale, p.spec.decay);
  }
}

}  // namespace kdgrid
