#include "src/train/pipeline.h"

#include <deque>

namespace kdgrid {
namespace {

// Tags keep forward activations and backward gradients apart on the pp communicator.
constexpr int kTagActivation = 1;
constexpr int kTagGradient = 2;

struct InFlight {
  int m = 0;  // micro-batch index
  StageActivations acts;
  Tensor input;     // received stage input
  Tensor output;    // stage output, kept alive until its send completes (in backward(m))
  Communicator::SendTicket output_send = 0;
  Tensor grad_out;  // last stage: d(stage output) from the head
};

// The last d(stage input) sent to the previous stage: its buffer lives until the send is
// retired, just before the next one is sent.
struct GradSend {
  Tensor buffer;
  Communicator::SendTicket ticket = 0;
};

}  // namespace

LossSums CrossEntropyHead::lastStage(int /*m*/, const MicroBatch& mb, StageActivations& acts,
                                     float grad_scale, Tensor* dout) {
  return model_.headForwardBackward(acts, mb.targets, grad_scale, dout);
}

LossSums pipelineTrainStep(Gpt2Stage& model, Communicator& pp, const std::vector<MicroBatch>& micro,
                           float grad_scale, LossHead* head, const EmbeddingHooks& hooks) {
  const int P = pp.size(), s = pp.rank(), M = static_cast<int>(micro.size());
  const int64_t C = model.config().d_model;
  const DType dtype = model.computeType();
  std::deque<InFlight> in_flight;  // forwards whose backward has not run yet, oldest first
  GradSend grad_send;              // the gradient send that may still be in flight
  LossSums loss;

  auto forward = [&](int m) {
    const MicroBatch& mb = micro[m];
    if (head) head->beforeForward(m, mb);
    InFlight f;
    f.m = m;
    if (s > 0) {
      f.input = Tensor::empty({mb.B * mb.T, C}, dtype, model.runtime().backend);
      pp.recv(f.input, s - 1, kTagActivation);
    }
    const Tensor* delta = s == 0 && hooks.x0_delta ? &(*hooks.x0_delta)[m] : nullptr;
    const Tensor& out =
        model.forward(f.acts, mb.inputs, s > 0 ? &f.input : nullptr, mb.B, mb.T, delta);
    if (s < P - 1) {
      f.output = out;
      f.output_send = pp.send(out, s + 1, kTagActivation);
    } else {
      LossSums l = head ? head->lastStage(m, mb, f.acts, grad_scale, &f.grad_out)
                        : model.headForwardBackward(f.acts, mb.targets, grad_scale, &f.grad_out);
      loss.ce_sum += l.ce_sum;
      loss.kl_sum += l.kl_sum;
      loss.tokens += l.tokens;
    }
    in_flight.push_back(std::move(f));
  };
  auto backward = [&]() {
    InFlight& f = in_flight.front();
    if (s < P - 1) {
      f.grad_out = Tensor::empty({f.acts.B * f.acts.T, C}, dtype, model.runtime().backend);
      pp.recv(f.grad_out, s + 1, kTagGradient);
      // The next stage sent this gradient after it received the output: that send is done.
      pp.waitSend(f.output_send);
    }
    Tensor* d_x0 = s == 0 && hooks.d_x0 ? &(*hooks.d_x0)[f.m] : nullptr;
    Tensor grad_in = model.backward(f.acts, f.grad_out, d_x0);
    if (s > 0) {
      // The previous stage takes gradients in order, needing nothing more from this stage to
      // reach the receive of the last one: waiting for it cannot deadlock.
      pp.waitSend(grad_send.ticket);
      grad_send.buffer = std::move(grad_in);
      grad_send.ticket = pp.send(grad_send.buffer, s - 1, kTagGradient);
    }
    in_flight.pop_front();  // activations, output and gradient buffers of micro-batch m go
  };

  const int warmup = std::min(P - s - 1, M);
  for (int m = 0; m < warmup; ++m) forward(m);
  for (int m = warmup; m < M; ++m) {
    forward(m);
    backward();
  }
  while (!in_flight.empty()) backward();
  pp.waitSends();
  if (head) head->endStep();
  return loss;
}

LossSums pipelineForward(Gpt2Stage& model, Communicator& pp, const MicroBatch& mb) {
  const int P = pp.size(), s = pp.rank();
  StageActivations acts;
  Tensor input;
  if (s > 0) {
    input = Tensor::empty({mb.B * mb.T, model.config().d_model}, model.computeType(),
                          model.runtime().backend);
    pp.recv(input, s - 1, kTagActivation);
  }
  const Tensor& out = model.forward(acts, mb.inputs, s > 0 ? &input : nullptr, mb.B, mb.T);
  LossSums loss;
  if (s < P - 1) {
    pp.send(out, s + 1, kTagActivation);
    pp.waitSends();
  } else {
    loss = model.headForwardBackward(acts, mb.targets, 0.0f, nullptr);
  }
  return loss;
}

}  // namespace kdgrid
