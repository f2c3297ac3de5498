#include "src/distill/stage_forward.h"

namespace kdgrid {

void forwardThroughStages(Gpt2Stage& model, Communicator& pp, const uint32_t* inputs, int64_t B,
                          int64_t T, StageActivations& acts, int tag) {
  const int P = pp.size(), s = pp.rank();
  Tensor input;
  if (s > 0) {
    input = Tensor::zeros({B * T, model.config().d_model}, model.computeType(),
                          model.runtime().backend);
    pp.recv(input, s - 1, tag);
  }
  const Tensor& out = model.forward(acts, inputs, s > 0 ? &input : nullptr, B, T);
  if (s < P - 1) {
    pp.send(out, s + 1, tag);
    pp.waitSends();
  }
  acts.blocks.clear();
}

}  // namespace kdgrid
