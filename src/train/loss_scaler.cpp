#include "src/train/loss_scaler.h"

#include <cmath>

#include "src/core/check.h"
#include "src/core/log.h"

namespace kdgrid {

bool LossScaler::admit(TrainingState& state, double loss, double grad_norm,
                       const std::string& last_checkpoint) const {
  if (std::isfinite(grad_norm) && std::isfinite(loss)) return true;
  if (compute_ == DType::kF16) {
    // Skip the step: weights and optimizer state stay as they are.
    state.loss_scale /= 2;
    state.good_steps = 0;
    log0("step {}: gradient overflow at loss scale {}, step skipped, scale halved",
         state.step + 1, state.loss_scale * 2);
    return false;
  }
  if (on_nan_ == OnNan::kStop) {
    throw Error(kExitFailure,
                fmt::format("step {}: the loss ({}) or gradient norm ({}) is not finite; "
                            "stopping without saving (--on-nan stop; the last checkpoint is {})",
                            state.step + 1, loss, grad_norm, last_checkpoint),
                /*on_every_rank=*/true);
  }
  log0("warning: step {}: the loss ({}) or gradient norm ({}) is not finite; update skipped "
       "(--on-nan skip)",
       state.step + 1, loss, grad_norm);
  return false;
}

void LossScaler::applied(TrainingState& state) const {
  if (compute_ == DType::kF16 && ++state.good_steps >= kLossScaleWindow) {
    state.loss_scale *= 2;
    state.good_steps = 0;
  }
}

}  // namespace kdgrid
