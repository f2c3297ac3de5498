// In-process training steps for the benchmarks (bench_train_step, bench_recompute,
// bench_distill_step): one rank, the engine's own path (Gpt2Stage forward/backward through
// pipelineTrainStep, global gradient norm, AdamW) on synthetic tokens, with the step's phases
// timed. A step takes an optional LossHead (distillation) in place of cross-entropy.
//
// FLOPs of one training step (model FLOPs: what the model needs, not what an implementation
// spends; recomputation is not counted), for L layers, width C, MLP width F, vocabulary V,
// sequence T, over the B * T tokens of a step:
//   dense:     a linear layer with a [out, in] weight costs 2 * in * out per token forward and
//              twice that backward (input and weight gradients): 6 * in * out. Per block the
//              weights are qkv 3C x C, attn.out C x C, fc1 F x C, fc2 C x F; the tied LM head
//              is V x C. So 6 * P_mm per token with P_mm = L (4 C^2 + 2 C F) + V C (the
//              matrix parameters, tied embedding counted once; biases, LayerNorm, GELU,
//              softmax and the embedding lookup are O(C) per token and left out).
//   attention: per layer and sequence, Q K^T and P V are 2 T^2 C each over the full square,
//              half of it under the causal mask: 2 T^2 C forward; backward (dP = dO V^T,
//              dV = P^T dO, dS K, dS^T Q) is twice that. 6 T^2 C per layer and sequence =
//              6 L T C per token (a window W < T: T replaced by the mean keys per query).
// The bench model (L 4, C 256, F 1024, V 4096, T 256): P_mm = 4,194,304; 25.17 + 1.57 =
// 26.74 MFLOP per token.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <vector>

#include "kernels/cpu/adamw.h"
#include "src/model/gpt2.h"
#include "src/model/params.h"
#include "src/optim/adamw.h"
#include "src/parallel/grid.h"
#include "src/tensor/op_profile.h"
#include "src/tensor/ops.h"
#include "src/tensor/runtime.h"
#include "src/train/loss_head.h"
#include "src/train/pipeline.h"

namespace kdgrid::bench {

struct HarnessConfig {
  ModelConfig model;  // resolved (d_ff, vocab_size set)
  int64_t batch = 8;  // sequences per step (one micro-batch)
  DType compute = DType::kF32;
  Recompute recompute = Recompute::kNone;
  uint64_t seed = 0;
};

// Model FLOPs of one training step (see the file comment).
inline double trainStepFlops(const ModelConfig& m, int64_t batch) {
  const double C = m.d_model, F = m.d_ff, V = m.vocab_size, T = m.max_seq, L = m.n_layer;
  const double p_mm = L * (4 * C * C + 2 * C * F) + V * C;
  double keys = (T + 1) / 2;  // mean keys per query, causal
  if (m.attn_window > 0 && m.attn_window < T) {
    const double W = m.attn_window;  // queries t < W see t + 1 keys, the rest W
    keys = (W * (W + 1) / 2 + (T - W) * W) / T;
  }
  // 2 products x 2 FLOP per multiply-add x keys x C forward, x3 with backward, per layer.
  const double attention = 3 * 2 * 2 * keys * C * L;
  return batch * T * (6 * p_mm + attention);
}

// Seconds spent in each phase of a step.
struct StepTimes {
  double total = 0, zero_grads = 0, forward_backward = 0, grad_norm = 0, optimizer = 0;
};

class TrainStepHarness {
 public:
  TrainStepHarness(const HarnessConfig& config, ProcessGrid& grid)
      : config_(config),
        grid_(grid),
        model_(config.model, 1, 0, grid.tpComm(), config.compute, config.recompute, rt_),
        optimizer_(rt_, model_.layout(), cpu::AdamWConfig{.weight_decay = 0.1f}) {
    initializeParameters(model_.layout(), config.seed, model_.params().data<float>());
    model_.syncComputeWeights();
    const int64_t T = config.model.max_seq;
    inputs_.resize(config.batch * T);
    targets_.resize(config.batch * T);
    rng_.seed(config.seed);
  }

  Runtime& runtime() { return rt_; }
  Gpt2Stage& model() { return model_; }
  double lastLoss() const { return last_loss_; }  // cross-entropy, nats per token
  double lastKl() const { return last_kl_; }      // divergence (distillation heads), nats/token

  // One optimizer step on fresh synthetic tokens (uniform over the vocabulary).
  StepTimes step() {
    drawTokens();
    return stepOnBatch(nullptr);
  }

  // Fresh synthetic tokens for the next stepOnBatch (targets: the inputs shifted by one).
  void drawTokens() {
    const int64_t tokens = config_.batch * config_.model.max_seq;
    std::uniform_int_distribution<uint32_t> pick(0, config_.model.vocab_size - 1);
    for (int64_t i = 0; i < tokens; ++i) inputs_[i] = pick(rng_);
    std::copy(inputs_.begin() + 1, inputs_.end(), targets_.begin());
    targets_.back() = pick(rng_);
  }
  // The current batch [batch, max_seq].
  MicroBatch batch() const {
    return {inputs_.data(), targets_.data(), config_.batch, config_.model.max_seq};
  }

  // One optimizer step on the current batch; `head` (null: cross-entropy) computes the loss,
  // as the trainer's LossHead does (its endStep() is called after the step).
  StepTimes stepOnBatch(LossHead* head) {
    using Clock = std::chrono::steady_clock;
    const int64_t tokens = config_.batch * config_.model.max_seq;
    std::vector<MicroBatch> micro{batch()};

    StepTimes t;
    const size_t n = model_.layout().totalElements();
    const auto t0 = Clock::now();
    model_.zeroGrads();
    const auto t1 = Clock::now();
    const LossSums loss =
        pipelineTrainStep(model_, grid_.ppComm(), micro, 1.0f / static_cast<float>(tokens), head);
    if (head) head->endStep();
    const auto t2 = Clock::now();
    // Global norm and clip as the trainer does (one rank: every tensor counted once).
    const double norm = std::sqrt(ops::sumSquares(rt_, model_.grads().rows(0, static_cast<int64_t>(n))));
    const double clip = norm > 1.0 ? 1.0 / norm : 1.0;
    const auto t3 = Clock::now();
    optimizer_.step(model_.params(), model_.grads(), model_.computeCopy(), 3e-4f,
                    static_cast<float>(clip), ++step_);
    const auto t4 = Clock::now();
    const auto sec = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
    t.zero_grads = sec(t0, t1);
    t.forward_backward = sec(t1, t2);
    t.grad_norm = sec(t2, t3);
    t.optimizer = sec(t3, t4);
    t.total = sec(t0, t4);
    last_loss_ = loss.ce_sum / std::max<int64_t>(1, loss.tokens);
    last_kl_ = loss.kl_sum / std::max<int64_t>(1, loss.tokens);
    return t;
  }

 private:
  HarnessConfig config_;
  ProcessGrid& grid_;
  Runtime rt_;  // before model_: the model keeps a reference
  Gpt2Stage model_;
  AdamW optimizer_;
  std::vector<uint32_t> inputs_, targets_;
  std::mt19937_64 rng_;
  int64_t step_ = 0;
  double last_loss_ = 0, last_kl_ = 0;
};

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t h = v.size() / 2;
  return v.size() % 2 ? v[h] : 0.5 * (v[h - 1] + v[h]);
}

// Value at fraction q (0..1) of the sorted values (nearest rank).
inline double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size()))) ;
  return v[std::min(v.size() - 1, i == 0 ? 0 : i - 1)];
}

// A per-op table of `profile` gathered over `steps` steps of mean duration step_s seconds.
inline void printOpProfile(const OpProfile& profile, int steps, double step_s) {
  std::printf("  %-34s %6s %9s %6s %10s\n", "op (M x N x K for GEMMs)", "calls", "ms/step", "%step",
              "GFLOP/s");
  double gemm_s = 0;
  for (const OpProfile::Entry& e : profile.entries()) {
    const double ms = e.seconds / steps * 1e3;
    if (e.flops > 0) gemm_s += e.seconds;
    std::printf("  %-34s %6lld %9.2f %5.1f%% ", e.label.c_str(),
                static_cast<long long>(e.calls / steps), ms, 100 * e.seconds / steps / step_s);
    if (e.flops > 0) std::printf("%10.1f", e.flops / e.seconds * 1e-9);
    std::printf("\n");
  }
  const double ops_s = profile.totalSeconds() / steps;
  std::printf("  GEMMs %.1f ms/step, other ops %.1f ms/step, outside ops %.1f ms/step\n",
              gemm_s / steps * 1e3, (ops_s - gemm_s / steps) * 1e3, (step_s - ops_s) * 1e3);
}

}  // namespace kdgrid::bench
