// What the training step does with a micro-batch besides the model's own forward and backward:
// the loss on the last pipeline stage (cross-entropy for `train`, the distillation loss for
// `distill`) and any work that must travel along the pipeline with the micro-batch (the
// online teacher's forward). The trainer owns one per run; pipelineTrainStep calls it.
#pragma once

#include <cstdint>

#include "src/model/gpt2.h"

namespace kdgrid {

struct MicroBatch;
struct StepBatch;

class LossHead {
 public:
  virtual ~LossHead() = default;

  // Every rank, once per optimizer step before the pipeline runs, with this rank's windows.
  virtual void beginStep(const StepBatch& /*batch*/) {}
  // Every stage, at the start of micro-batch m's forward, before the model's own.
  virtual void beforeForward(int /*m*/, const MicroBatch& /*mb*/) {}
  // Last stage, after micro-batch m's forward: its loss sums and, when grad_scale > 0, its
  // backward to d(stage output) in `dout`, d loss / d logit scaled by grad_scale.
  virtual LossSums lastStage(int m, const MicroBatch& mb, StageActivations& acts, float grad_scale,
                             Tensor* dout) = 0;
  // After the step's point-to-point sends have completed (buffers kept for them may go).
  virtual void endStep() {}

  // The step's loss from the global means per target token of cross-entropy and divergence.
  virtual double combine(double ce, double /*kl*/) const { return ce; }
  // Whether metrics carry `kl` (distillation).
  virtual bool reportsKl() const { return false; }
};

// `train`: cross-entropy of the targets (Gpt2Stage::headForwardBackward).
class CrossEntropyHead final : public LossHead {
 public:
  explicit CrossEntropyHead(Gpt2Stage& model) : model_(model) {}
  LossSums lastStage(int m, const MicroBatch& mb, StageActivations& acts, float grad_scale,
                     Tensor* dout) override;

 private:
  Gpt2Stage& model_;
};

}  // namespace kdgrid
