#include "src/train/train_step.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "src/core/fault_injector.h"
#include "src/core/log.h"
#include "src/tensor/ops.h"
#include "src/tensor/staging.h"
#include "src/train/adversarial.h"
#include "src/train/pipeline.h"

namespace kdgrid {
namespace {

// A step's windows of T + 1 tokens cut into micro-batches of inputs (first T) and targets
// (last T); the vectors own the tokens the MicroBatch pointers point into.
struct MicroBatches {
  std::vector<std::vector<uint32_t>> inputs, targets;  // [n_micro][batch_size * T]
  std::vector<MicroBatch> micro;
};

MicroBatches splitWindows(const StepBatch& batch, int batch_size, int64_t T) {
  const size_t n_micro = batch.tokens.size() / (size_t(batch_size) * (T + 1));
  MicroBatches out;
  out.inputs.assign(n_micro, std::vector<uint32_t>(batch_size * T));
  out.targets.assign(n_micro, std::vector<uint32_t>(batch_size * T));
  for (size_t m = 0; m < n_micro; ++m) {
    const uint32_t* windows = batch.tokens.data() + m * batch_size * (T + 1);
    for (int b = 0; b < batch_size; ++b) {
      std::copy_n(windows + b * (T + 1), T, out.inputs[m].begin() + b * T);
      std::copy_n(windows + b * (T + 1) + 1, T, out.targets[m].begin() + b * T);
    }
    out.micro.push_back({out.inputs[m].data(), out.targets[m].data(), batch_size, T});
  }
  return out;
}

// Forward and backward of every micro-batch through the pipeline: the clean pass, and under
// adversarial training the perturbed one too (src/train/adversarial.h). Gradients accumulate
// with d loss / d logit scaled by grad_scale. Loss sums are non-zero on the last stage only.
AdversarialSums forwardBackward(TrainStepParts& p, const std::vector<MicroBatch>& micro,
                                float grad_scale) {
  const TrainConfig& tc = p.config;
  if (tc.adv_epsilon > 0) {
    return adversarialTrainStep(p.model, p.grid.ppComm(), micro, grad_scale,
                                static_cast<float>(tc.adv_epsilon),
                                static_cast<float>(tc.adv_weight), p.head);
  }
  return {pipelineTrainStep(p.model, p.grid.ppComm(), micro, grad_scale, &p.head), {}};
}

// Test hook (src/core/fault_injector.h): NaN in the loss and the gradients of world rank 0,
// which the reductions carry to every rank.
void injectNanIfTesting(TrainStepParts& p, int64_t step, LossSums& sums) {
  FaultInjector* faults = faultInjector();
  if (!faults || !faults->poisonStep(step) || worldRank() != 0) return;
  sums.ce_sum = std::nan("");
  const float nan = std::nanf("");
  Tensor first = p.model.grads().rows(0, 1);
  copyFromHost(first, &nan);
}

// Tied embedding between first and last stage, then the replicas over dp (ZeRO: each dp rank
// gets the sum of its shard only).
void reduceGradients(TrainStepParts& p) {
  if (Communicator* emb = p.grid.embeddingComm()) {
    Tensor g = p.model.grad("tok_emb");
    emb->allReduceSum(g);
  }
  p.data_parallel.reduceGradients(p.model.grads());
}

// The loss sums of every rank as global means (only the last stage has a loss, the dp ranks
// each a share), and the objective: the head's combination of ce and kl, under adversarial
// training (1 - W) clean + W adversarial.
void reduceLosses(TrainStepParts& p, const AdversarialSums& sums, StepResult& r) {
  double loss_sums[4] = {sums.clean.ce_sum, sums.clean.kl_sum, sums.adversarial.ce_sum,
                         sums.adversarial.kl_sum};
  p.grid.dpComm().allReduceSum(loss_sums, 4);
  p.grid.ppComm().allReduceSum(loss_sums, 4);
  r.ce = loss_sums[0] / p.global_tokens, r.kl = loss_sums[1] / p.global_tokens;
  r.adv_ce = loss_sums[2] / p.global_tokens, r.adv_kl = loss_sums[3] / p.global_tokens;
  r.adv_loss = p.head.combine(r.adv_ce, r.adv_kl);
  const double w = p.config.adv_weight;
  r.loss = p.config.adv_epsilon > 0 ? (1 - w) * p.head.combine(r.ce, r.kl) + w * r.adv_loss
                                    : p.head.combine(r.ce, r.kl);
}

// Sum of squared gradients this rank is responsible for in the global norm, over the flat
// range [begin, end) it owns (everything, or its ZeRO shard): tensors replicated over tp are
// counted by tp rank 0 only, and tok_emb (held by the first and last stage, gradients already
// summed) by the first stage only.
double localGradSquares(Gpt2Stage& model, const Tensor& grads, int tp_rank, size_t begin,
                        size_t end) {
  double sum = 0;
  for (const LocalParam& p : model.layout().params()) {
    if (p.tp_replicated && tp_rank != 0) continue;
    if (p.spec.name == "tok_emb" && !model.firstStage()) continue;
    const size_t lo = std::max(begin, p.offset);
    const size_t hi = std::min(end, p.offset + static_cast<size_t>(p.numel()));
    if (lo < hi) {
      const Tensor part = grads.rows(static_cast<int64_t>(lo), static_cast<int64_t>(hi - lo));
      sum += ops::sumSquares(model.runtime(), part);
    }
  }
  return sum;
}

// The global gradient norm, each parameter counted once, still multiplied by the loss scale.
double scaledGradNorm(TrainStepParts& p) {
  double squares = localGradSquares(p.model, p.model.grads(), p.grid.tpRank(),
                                    p.data_parallel.begin(), p.data_parallel.end());
  p.data_parallel.sumOverShards(squares);
  p.grid.tpComm().allReduceSum(&squares, 1);
  p.grid.ppComm().allReduceSum(&squares, 1);
  return std::sqrt(squares);
}

// Clip to --grad-clip, unscale, AdamW on this rank's range, then (ZeRO) the updated shards to
// every dp rank.
void update(TrainStepParts& p, const StepResult& r, TrainingState& state) {
  const double max_norm = p.config.grad_clip;
  const double clip = max_norm > 0 && r.grad_norm > max_norm ? max_norm / r.grad_norm : 1.0;
  p.optimizer.step(p.model.params(), p.model.grads(), p.model.computeCopy(),
                   static_cast<float>(r.lr), static_cast<float>(clip / state.loss_scale),
                   ++state.adam_steps);
  if (p.data_parallel.zero()) {
    p.data_parallel.gatherParameters(p.model.params());
    p.model.syncComputeWeights();
  }
}

}  // namespace

StepResult trainStep(TrainStepParts& p, TrainingState& state,
                     const std::string& last_checkpoint) {
  // 1. Data: this dp rank's grad_accum micro-batches of the global batch.
  const StepBatch batch = p.loader.next();
  p.head.beginStep(batch);
  const MicroBatches micro = splitWindows(batch, p.config.batch_size, p.seq_len);

  // 2. Forward and backward; gradients sum over the global batch to the gradient of the mean
  //    loss, times the loss scale.
  p.model.zeroGrads();
  const float grad_scale = state.loss_scale / static_cast<float>(p.global_tokens);
  AdversarialSums sums = forwardBackward(p, micro.micro, grad_scale);
  injectNanIfTesting(p, state.step + 1, sums.clean);

  // 3. Reduce gradients, loss and gradient norm over the grid: every rank sees the same figures.
  StepResult r;
  reduceGradients(p);
  reduceLosses(p, sums, r);
  r.grad_norm = scaledGradNorm(p) / state.loss_scale;
  r.lr = learningRate(p.config, state.step);

  // 4. Update, unless the loss scaler skips the step (inf/nan).
  r.skipped = !p.scaler.admit(state, r.loss, r.grad_norm, last_checkpoint);
  if (!r.skipped) {
    update(p, r, state);
    p.scaler.applied(state);
  }
  state.step += 1;
  state.tokens_seen += p.global_tokens;
  state.cursor = batch.cursor_after;
  return r;
}

}  // namespace kdgrid
