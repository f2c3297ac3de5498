// The verdict on an optimizer step whose loss or gradients may not be finite, and fp16 dynamic
// loss scaling. Its state (loss_scale, good_steps) lives in TrainingState, so checkpoints carry
// it and a resumed run continues with the same scale.
//
// fp16: the loss (hence every gradient) is multiplied by loss_scale before backward; a step with
// an inf/nan loss or gradient norm is skipped and the scale halved; after kLossScaleWindow clean
// steps in a row the scale doubles. fp32/bf16 (scale 1): a non-finite step is skipped with a
// warning (--on-nan skip) or ends the run, exit 1, nothing saved (--on-nan stop).
#pragma once

#include <cstdint>
#include <string>

#include "checkpoints/checkpoint.h"
#include "src/core/dtype.h"
#include "src/train/config.h"

namespace kdgrid {

// 2^16 start and a 1000-step window follow common mixed-precision practice.
constexpr float kInitialLossScale = 65536.0f;
constexpr int64_t kLossScaleWindow = 1000;

class LossScaler {
 public:
  LossScaler(DType compute, OnNan on_nan) : compute_(compute), on_nan_(on_nan) {}

  // The scale a fresh run (or one resumed from a checkpoint without steps) starts with.
  float initialScale() const { return compute_ == DType::kF16 ? kInitialLossScale : 1.0f; }

  // Step state.step + 1, with its global loss and unscaled gradient norm (equal on every rank,
  // so all ranks decide alike): true = apply the update. A non-finite value skips the step
  // (fp16: the scale halves) or, under --on-nan stop, throws naming the step and
  // `last_checkpoint` (what a rerun would resume from).
  bool admit(TrainingState& state, double loss, double grad_norm,
             const std::string& last_checkpoint) const;
  // After an applied update: fp16 counts the clean step and doubles the scale every window.
  void applied(TrainingState& state) const;

 private:
  DType compute_;
  OnNan on_nan_;
};

}  // namespace kdgrid
