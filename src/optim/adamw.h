// AdamW over this rank's flat fp32 parameters (DESIGN section 9: master weights, gradients
// and optimizer state in fp32). Weight decay is decoupled and applies to 2-D tensors only.
// With ZeRO-1 each data-parallel rank keeps m and v for its shard of the flat buffer only.
#pragma once

#include <cstdint>

#include "model/params.h"
#include "tensor/tensor.h"

namespace kdgrid {

struct AdamWConfig {
  float beta1 = 0.9f;
  float beta2 = 0.95f;  // GPT-2 / GPT-3 convention for language models
  float eps = 1e-8f;
  float weight_decay = 0.1f;
};

class AdamW {
 public:
  AdamW(const ParameterLayout& layout, const AdamWConfig& config);

  // One update of every local parameter: p -= lr * (m_hat / (sqrt(v_hat) + eps) + wd * p),
  // with gradients multiplied by grad_scale first (clipping and loss-scale unscaling).
  // `step` is the 1-based optimizer step for bias correction.
  void step(float* params, const float* grads, float lr, float grad_scale, int64_t step);

  // Moment estimates, flat over the layout (checkpoints read and write them).
  Tensor& m() { return m_; }
  Tensor& v() { return v_; }
  const ParameterLayout& layout() const { return layout_; }

 private:
  const ParameterLayout& layout_;
  AdamWConfig config_;
  Tensor m_, v_;
};

}  // namespace kdgrid
