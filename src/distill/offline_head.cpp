#include "src/distill/offline_head.h"

#include "data/loader.h"
#include "src/core/log.h"
#include "src/distill/kd_loss.h"
#include "src/train/pipeline.h"

namespace kdgrid {

OfflineDistillHead::OfflineDistillHead(Gpt2Stage& student, Communicator& tp,
                                       std::vector<std::unique_ptr<TopkStream>> streams,
                                       const KdParams& kd, int64_t T, int batch_size)
    : student_(student),
      tp_(tp),
      streams_(std::move(streams)),
      kd_(kd),
      T_(T),
      batch_size_(batch_size) {
  KDGRID_CHECK(!streams_.empty(), "offline distillation without top-k streams");
  const TopkStream& first = *streams_.front();
  for (const auto& s : streams_)
    KDGRID_OPTION_CHECK(s->k() == first.k() && s->temperature() == first.temperature(),
                        "--teacher-logits: {} has k {} and temperature {}, but {} has k {} and "
                        "temperature {}",
                        s->dir(), s->k(), s->temperature(), first.dir(), first.k(),
                        first.temperature());
  k_ = first.k();
  // log-softmax(z / T0) restricted to the k ids and renormalised equals softmax(z / T) there
  // after scaling by T0 / T: any --kd-temperature can use shards written at another one.
  teacher_scale_ = static_cast<float>(first.temperature() / kd_.temperature);
  log0("offline distillation: top-k {} written at temperature {} (teacher {}), used at {}", k_,
       first.temperature(), first.teacherCheckpoint(), kd_.temperature);
}

void OfflineDistillHead::beginStep(const StepBatch& batch) {
  if (!student_.lastStage()) return;  // only the loss needs the teacher's rows
  const size_t windows = batch.origins.size();
  ids_.resize(windows * T_ * k_);
  logprobs_.resize(windows * T_ * k_);
  for (size_t w = 0; w < windows; ++w) {
    const WindowOrigin& o = batch.origins[w];
    KDGRID_CHECK(o.source < streams_.size(), "window from source {} of {}", o.source,
                 streams_.size());
    // Rows of the window's T input positions (the prediction made at each input token).
    streams_[o.source]->read(o.begin, T_, ids_.data() + w * T_ * k_,
                             logprobs_.data() + w * T_ * k_);
  }
}

LossSums OfflineDistillHead::lastStage(int m, const MicroBatch& mb, StageActivations& acts,
                                       float grad_scale, Tensor* dout) {
  KDGRID_CHECK(
      mb.B == batch_size_ && mb.T == T_ && (size_t(m) + 1) * batch_size_ * T_ * k_ <= ids_.size(),
      "micro-batch {} [{}, {}] has no top-k rows", m, mb.B, mb.T);
  const cpu::VocabSlice slice{student_.vocabStart(), student_.vocabLocal(),
                              student_.config().vocab_size};
  const size_t base = size_t(m) * batch_size_ * T_ * k_;
  auto loss = [&](Tensor& logits, int64_t r0, int64_t /*n*/, bool backward) {
    const size_t at = base + size_t(r0) * k_;
    return kdTopkChunk(student_.runtime(), logits, ids_.data() + at, logprobs_.data() + at, k_, teacher_scale_,
                       mb.targets + r0, slice, tp_, kd_, backward ? grad_scale : 0.0f);
  };
  return student_.headLossChunks(acts, loss, grad_scale > 0, dout);
}

}  // namespace kdgrid
