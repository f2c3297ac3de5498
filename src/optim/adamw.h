// AdamW over this rank's flat fp32 parameters (DESIGN section 9: master weights, gradients
// and optimizer state in fp32). Weight decay is decoupled and applies to 2-D tensors only
// (weights and embeddings, not biases or LayerNorm).
#pragma once

#include <cstdint>

#include "kernels/cpu/adamw.h"
#include "model/params.h"
#include "tensor/tensor.h"

namespace kdgrid {

class AdamW {
 public:
  // config.lr is ignored: the schedule passes each step's rate.
  AdamW(const ParameterLayout& layout, const cpu::AdamWConfig& config);

  // One update of every local parameter, gradients multiplied by grad_scale first (clipping
  // and loss-scale unscaling in one pass); `step` is 1-based (bias correction). When
  // compute_copy is given (bf16/fp16 runs) the updated weights are also written there.
  void step(float* params, const float* grads, Tensor* compute_copy, float lr, float grad_scale,
            int64_t step);

  // Moment estimates, flat over the layout (checkpoints read and write them).
  Tensor& m() { return m_; }
  Tensor& v() { return v_; }

 private:
  const ParameterLayout& layout_;
  cpu::AdamWConfig config_;
  Tensor m_, v_;
};

}  // namespace kdgrid
