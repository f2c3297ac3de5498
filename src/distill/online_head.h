// Online distillation's loss head: the teacher runs alongside the student, partitioned over
// the same pipeline stages and tensor-parallel ranks. At each micro-batch's forward every
// stage first runs the teacher's layers of that stage on the same tokens (its activations
// travel down the pipeline with tag kTagTeacherActivation, next to the student's); on the last
// stage the teacher's vocabulary-parallel logits meet the student's, chunk by chunk, in
// kdDenseChunk. Nothing of the teacher is kept for a backward, and its weights never change.
#pragma once

#include <vector>

#include "src/distill/kd_config.h"
#include "src/distill/teacher.h"
#include "src/parallel/communicator.h"
#include "src/train/loss_head.h"

namespace kdgrid {

class OnlineDistillHead final : public LossHead {
 public:
  // `teacher` must share the student's vocabulary and grid (loadTeacher).
  OnlineDistillHead(Gpt2Stage& student, Teacher teacher, Communicator& pp, Communicator& tp,
                    const KdParams& kd);

  void beforeForward(int m, const MicroBatch& mb) override;
  LossSums lastStage(int m, const MicroBatch& mb, StageActivations& acts, float grad_scale,
                     Tensor* dout) override;
  void endStep() override { in_flight_.clear(); }
  double combine(double ce, double kl) const override { return kd_.combine(ce, kl); }
  bool reportsKl() const override { return true; }

 private:
  Gpt2Stage& student_;
  Teacher teacher_;
  Communicator& pp_;
  Communicator& tp_;
  KdParams kd_;
  StageActivations acts_;  // last stage: the teacher's forward of micro-batch acts_micro_
  int acts_micro_ = -1;
  std::vector<Tensor> in_flight_;  // teacher outputs whose sends complete at the step's end
  Tensor logits_;                  // teacher logits chunk [rows, V_local], reused
};

}  // namespace kdgrid
