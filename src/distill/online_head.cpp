#include "src/distill/online_head.h"

#include "src/distill/kd_loss.h"
#include "src/distill/stage_forward.h"
#include "src/tensor/op_profile.h"
#include "src/train/pipeline.h"

namespace kdgrid {

OnlineDistillHead::OnlineDistillHead(Gpt2Stage& student, Teacher teacher, Communicator& pp,
                                     Communicator& tp, const KdParams& kd)
    : student_(student), teacher_(std::move(teacher)), pp_(pp), tp_(tp), kd_(kd) {
  KDGRID_CHECK(teacher_.stage->vocabStart() == student_.vocabStart() &&
                   teacher_.stage->vocabLocal() == student_.vocabLocal(),
               "teacher and student vocabulary slices differ");
}

// Under adversarial training (train/adversarial.h) this runs for the clean and the perturbed
// pass alike, and the teacher always sees the clean tokens: the perturbation lives in the
// student's embedding space (another width and vocabulary geometry than the teacher's, so it
// has no counterpart there), and the point is that the student should still give the teacher's
// clean-input distribution when its own input is pushed against it; a teacher moved by the
// student's attack would only teach the student to follow the attack. The teacher's forward is
// recomputed for the second pass (identical values) rather than kept for every micro-batch.
void OnlineDistillHead::beforeForward(int m, const MicroBatch& mb) {
  Gpt2Stage& teacher = *teacher_.stage;
  const int P = pp_.size(), s = pp_.rank();
  StageActivations acts;
  Tensor input;
  if (s > 0) {
    input = Tensor::zeros({mb.B * mb.T, teacher.config().d_model}, teacher.computeType(),
                          teacher.runtime().backend);
    pp_.recv(input, s - 1, kTagTeacherActivation);
  }
  const Tensor& out = teacher.forward(acts, mb.inputs, s > 0 ? &input : nullptr, mb.B, mb.T);
  if (s < P - 1) {
    // Non-blocking like the student's: the buffer lives until the schedule's waitSends.
    in_flight_.push_back(out);
    pp_.send(out, s + 1, kTagTeacherActivation);
    return;
  }
  acts.blocks.clear();  // only the final LayerNorm output is needed, for the logits
  acts_ = std::move(acts);
  acts_micro_ = m;
}

LossSums OnlineDistillHead::lastStage(int m, const MicroBatch& mb, StageActivations& acts,
                                      float grad_scale, Tensor* dout) {
  KDGRID_CHECK(acts_micro_ == m, "teacher forward of micro-batch {} missing (have {})", m,
               acts_micro_);
  const cpu::VocabSlice slice{student_.vocabStart(), student_.vocabLocal(),
                              student_.config().vocab_size};
  Gpt2Stage& teacher = *teacher_.stage;
  auto loss = [&](Tensor& logits, int64_t r0, int64_t n, bool backward) {
    if (!logits_.defined() || logits_.dim(0) < n)
      logits_ = student_.runtime().zeros({n, student_.vocabLocal()}, DType::kF32);
    Tensor teacher_logits = logits_.rows(0, n);
    teacher.headLogits(acts_, r0, teacher_logits);
    return kdDenseChunk(student_.runtime(), logits, teacher_logits, mb.targets + r0, slice, tp_, kd_,
                        backward ? grad_scale : 0.0f);
  };
  const LossSums sums = student_.headLossChunks(acts, loss, grad_scale > 0, dout);
  acts_ = StageActivations{};
  acts_micro_ = -1;
  return sums;
}

}  // namespace kdgrid
