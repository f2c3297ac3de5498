// The LM head with a pluggable loss (Gpt2Stage::headLossChunks, headLogits): the chunk loop
// that cross-entropy (headForwardBackward), distillation and teacher-logit extraction share.
#include <algorithm>

#include "src/model/gpt2.h"
#include "src/tensor/ops.h"

namespace kdgrid {
namespace {
// Rows of logits the LM head handles at once: as many as fit an fp32 [rows, V_local] buffer of
// kHeadChunkBytes (each chunk is written by the GEMM, read by the softmax statistics, rewritten
// by its backward and read by two GEMMs, so it should stay in cache), but at least
// kHeadMinRows (GEMM efficiency: the tok_emb gradient [V_local, C] is read and written once per
// chunk; 256 x 50304 x 4 B = 51 MB for GPT-2's vocabulary). V 4096: 1024 rows.
constexpr int64_t kHeadChunkBytes = int64_t{16} << 20;
constexpr int64_t kHeadMinRows = 256;

int64_t headChunkRows(int64_t vocab_local) {
  const int64_t rows = kHeadChunkBytes / (4 * std::max<int64_t>(1, vocab_local)) / 64 * 64;
  return std::max(kHeadMinRows, rows);
}

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
  if (backward) dlnf = act({N, C}, compute_);
  const int64_t chunk_rows = headChunkRows(vocab_local_);
  Tensor logits = act({std::min(N, chunk_rows), vocab_local_}, DType::kF32);
  Tensor dlogits_c;  // dlogits in the compute dtype (bf16/fp16 runs)
  if (backward && compute_ != DType::kF32) dlogits_c = act(logits.shape(), compute_);
  LossSums totals;
  for (int64_t r0 = 0; r0 < N; r0 += chunk_rows) {
    const int64_t n = std::min(chunk_rows, N - r0);
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
    if (tp_.size() > 1) tp_.allReduceSum(dlnf);
    *dout = act({N, C}, compute_);
    Tensor dw = grad("ln_f.weight"), db = grad("ln_f.bias");
    ops::layernormBackward(rt_, *dout, false, dw, db, dlnf, acts.out, acts.lnf_mean, acts.lnf_rstd,
                           param("ln_f.weight"));
    // The blocks' backward reads neither: give their memory back before it starts.
    acts.out = acts.lnf = acts.lnf_mean = acts.lnf_rstd = Tensor();
  }
  return totals;
}

}  // namespace kdgrid
