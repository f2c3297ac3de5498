// AdamW over this rank's flat fp32 parameters (DESIGN section 9: master weights, gradients
// and optimizer state in fp32). Weight decay is decoupled and applies to 2-D tensors only
// (weights and embeddings, not biases or LayerNorm).
//
// The optimizer owns a contiguous range [begin, end) of the flat buffers: all of them
// normally, this data-parallel rank's shard under ZeRO-1 (DESIGN section 7), where each dp rank
// keeps m and v for its shard only, updates its shard, and the trainer all-gathers the rest.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/adamw.h"
#include "src/model/params.h"
#include "src/tensor/runtime.h"
#include "src/tensor/tensor.h"

namespace kdgrid {

class AdamW {
 public:
  // config.lr is ignored: the schedule passes each step's rate. [begin, end) is a range of
  // the flat buffers over `layout` (it may cut tensors anywhere).
  // m and v live on the runtime's backend.
  AdamW(Runtime& rt, const ParameterLayout& layout, const cpu::AdamWConfig& config, size_t begin,
        size_t end);
  // The whole layout.
  AdamW(Runtime& rt, const ParameterLayout& layout, const cpu::AdamWConfig& config)
      : AdamW(rt, layout, config, 0, layout.totalElements()) {}

  // One update of the owned range, gradients multiplied by grad_scale first (clipping and
  // loss-scale unscaling in one pass); `step` is 1-based (bias correction). params, grads and
  // compute_copy span the whole layout; only [begin, end) is read or written. When
  // compute_copy is given (bf16/fp16 runs) the updated weights are also written there.
  void step(Tensor& params, const Tensor& grads, Tensor* compute_copy, float lr, float grad_scale,
            int64_t step);

  size_t begin() const { return begin_; }
  size_t end() const { return end_; }
  // Moment estimates of the owned range [end - begin]: element i is flat element begin + i.
  Tensor& m() { return m_; }
  Tensor& v() { return v_; }

 private:
  Runtime& rt_;
  const ParameterLayout& layout_;
  cpu::AdamWConfig config_;
  size_t begin_, end_;
  Tensor m_, v_;
};

}  // namespace kdgrid
