// The LM head with a pluggable loss (Gpt2Stage::headLossChunks, headLogits): what
// distillation and teacher-logit extraction run on the last stage in place of
// headForwardBackward's cross-entropy.
#include <algorithm>

#include "model/gpt2.h"
#include "tensor/ops.h"

namespace kdgrid {
namespace {
// Rows of logits per chunk, as headForwardBackward: bounds the [rows, V_local] fp32 buffer.
constexpr int64_t kChunkRows = 256;
}  // namespace

void Gpt2Stage::headLogits(const StageActivations& acts, int64_t r0, Tensor& logits) {
  KDGRID_CHECK(lastStage(), "the LM head runs on the last stage");
  const int64_t n = logits.dim(0);
  KDGRID_CHECK(logits.dtype() == DType::kF32 && logits.dim(1) == vocab_local_ && r0 >= 0 &&
                   r0 + n <= acts.lnf.dim(0),
               "headLogits: logits {} for rows [{}, {}) of {}", logits.describe(), r0, r0 + n,
               acts.lnf.dim(0));
  ops::linearForward(rt_, logits, acts.lnf.rows(r0, n), computeWeight("tok_emb"), nullptr);
}

LossSums Gpt2Stage::headLossChunks(StageActivations& acts, const ChunkLoss& loss, bool backward,
                                   Tensor* dout) {
  KDGRID_CHECK(lastStage(), "the LM head runs on the last stage");
  const int64_t N = acts.B * acts.T, C = config_.d_model;
  Tensor emb = computeWeight("tok_emb");  // [V_local, C], the tied LM head
  Tensor demb = grad("tok_emb");
  Tensor dlnf;
  if (backward) dlnf = Tensor::zeros({N, C}, compute_);
  Tensor logits = Tensor::zeros({std::min(N, kChunkRows), vocab_local_}, DType::kF32);
  Tensor dlogits_c;  // dlogits in the compute dtype (bf16/fp16 runs)
  if (backward && compute_ != DType::kF32) dlogits_c = Tensor::zeros(logits.shape(), compute_);
  LossSums totals;
  for (int64_t r0 = 0; r0 < N; r0 += kChunkRows) {
    const int64_t n = std::min(kChunkRows, N - r0);
    Tensor x = acts.lnf.rows(r0, n);
    Tensor lg = logits.rows(0, n);
    ops::linearForward(rt_, lg, x, emb, nullptr);  // [n, V_local], fp32
    const LossSums s = loss(lg, r0, n, backward);
    totals.ce_sum += s.ce_sum;
    totals.kl_sum += s.kl_sum;
    totals.tokens += s.tokens;
    if (!backward) continue;
    Tensor dx = dlnf.rows(r0, n);
    if (compute_ == DType::kF32) {
      ops::linearBackward(rt_, &dx, false, &demb, nullptr, lg, x, emb);
    } else {
      Tensor dlc = dlogits_c.rows(0, n);
      ops::convert(rt_, dlc, lg);
      ops::linearBackward(rt_, &dx, false, &demb, nullptr, dlc, x, emb);
    }
  }
  if (backward) {
    // The LM head's input gradient is a partial sum over the vocabulary shards.
    if (tp_.size() > 1) tp_.allReduceSum(dlnf.raw(), dlnf.numel(), dlnf.dtype());
    *dout = Tensor::zeros({N, C}, compute_);
    Tensor dw = grad("ln_f.weight"), db = grad("ln_f.bias");
    ops::layernormBackward(rt_, *dout, false, dw, db, dlnf, acts.out, acts.lnf_mean, acts.lnf_rstd,
                           param("ln_f.weight"));
  }
  return totals;
}

}  // namespace kdgrid
