// Offline distillation's loss head: the teacher's top-k rows (kdgrid-teacher-topk shards from
// `kdgrid teacher-logits`) are read for each window the loader hands out, aligned by the
// window's source and global token offset (StepBatch::origins): the student's input position t
// of a window starting at token g meets row g + t, the teacher's prediction made at that token.
// The divergence is over the teacher's k ids, both distributions renormalised there
// (kernels/cpu/kl.h, top-k form).
#pragma once

#include <memory>
#include <vector>

#include "data/topk_stream.h"
#include "src/distill/kd_config.h"
#include "src/parallel/communicator.h"
#include "src/train/loss_head.h"

namespace kdgrid {

class OfflineDistillHead final : public LossHead {
 public:
  // streams[i] is aligned with --data source i; all share k and temperature (checked). T: the
  // student's max_seq; batch_size: windows per micro-batch.
  OfflineDistillHead(Gpt2Stage& student, Communicator& tp,
                     std::vector<std::unique_ptr<TopkStream>> streams, const KdParams& kd,
                     int64_t T, int batch_size);

  void beginStep(const StepBatch& batch) override;
  LossSums lastStage(int m, const MicroBatch& mb, StageActivations& acts, float grad_scale,
                     Tensor* dout) override;
  double combine(double ce, double kl) const override { return kd_.combine(ce, kl); }
  bool reportsKl() const override { return true; }

 private:
  Gpt2Stage& student_;
  Communicator& tp_;
  std::vector<std::unique_ptr<TopkStream>> streams_;
  KdParams kd_;
  int64_t T_, k_;
  int batch_size_;
  float teacher_scale_;          // written temperature / --kd-temperature
  std::vector<uint32_t> ids_;    // [windows, T, k] this step (last stage only)
  std::vector<float> logprobs_;  // [windows, T, k]
};

}  // namespace kdgrid
