// Tensor ops used by the model, dispatched on device and storage type to kernels/cpu (and
// kernels/cuda when tensors live on a GPU). Shapes are checked here; kernels trust them.
// Conventions: activations [N, C] row-major with N = batch * seq tokens; weights [out, in]
// (checkpoint layout); parameter gradients are fp32 and ACCUMULATE (+=), so gradient
// accumulation over micro-batches needs no extra buffers; activation gradients overwrite
// unless `accumulate` is set.
#pragma once

#include <cstdint>

#include "kernels/cpu/adamw.h"
#include "src/tensor/runtime.h"
#include "src/tensor/tensor.h"

namespace kdgrid::ops {

// y[N, out] = x[N, in] . w[out, in]^T (+ b[out], fp32). x, w, y share one dtype.
void linearForward(Runtime& rt, Tensor& y, const Tensor& x, const Tensor& w, const Tensor* b);
// dx[N, in] (=, or += when accumulate) = dy[N, out] . w[out, in];
// dw[out, in] += dy^T . x (fp32); db[out] += column sums of dy (fp32). Null pointers skip.
// dx may share x's memory (x is read only by the weight gradient, which is formed first).
// assign_dw: dw = dy^T . x instead of += (for a dw the caller knows to be zero: the same
// result, and the GEMM need not read it back).
void linearBackward(Runtime& rt, Tensor* dx, bool accumulate, Tensor* dw, Tensor* db,
                    const Tensor& dy, const Tensor& x, const Tensor& w, bool assign_dw = false);

// y, mean[N], rstd[N] (fp32) = LayerNorm(x) with fp32 weight/bias [C], eps 1e-5.
void layernormForward(Runtime& rt, Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x,
                      const Tensor& w, const Tensor& b);
// dx (=, or += when accumulate); dw, db += (fp32).
void layernormBackward(Runtime& rt, Tensor& dx, bool accumulate, Tensor& dw, Tensor& db,
                       const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                       const Tensor& w);

void geluForward(Runtime& rt, Tensor& y, const Tensor& x);
// Training: y = gelu(x) and deriv = gelu'(x) (deriv may be x itself: overwritten in place);
// then dx = dy * deriv (dx overwritten, may alias dy). cpu/gelu.h.
void geluForwardWithDerivative(Runtime& rt, Tensor& y, Tensor& deriv, const Tensor& x);
void geluBackwardFromDerivative(Runtime& rt, Tensor& dx, const Tensor& dy, const Tensor& deriv);

// out = a + b (same shape/dtype; out may alias a).
void add(Runtime& rt, Tensor& out, const Tensor& a, const Tensor& b);

// out[N, C] = tok_emb[ids - vocab_start] (ids in this rank's rows, else 0) + pos_emb[t]
// (when pos_emb is given). ids: [B, T] uint32 (N = B * T), tok_emb and pos_emb fp32 masters
// converted to out's dtype.
void embeddingForward(Runtime& rt, Tensor& out, const Tensor& ids, const Tensor& tok_emb,
                      int64_t vocab_start, const Tensor* pos_emb);
void embeddingBackward(Runtime& rt, Tensor& dtok_emb, Tensor* dpos_emb, const Tensor& dout,
                       const Tensor& ids, int64_t vocab_start);

// The heads of this rank's attention: n_head query heads over n_kv_head key/value heads
// (grouped-query attention, DESIGN section 4: query head h uses KV head h / (n_head /
// n_kv_head); GPT-2 has n_kv_head == n_head), and the window (0 = full causal; W > 0: a query
// sees itself and the W-1 keys before it). The Llama/Qwen2 and sequence-level distillation
// issues fill in what kernels/cpu does not do yet (n_kv_head < n_head, per-sequence lengths):
// these signatures already carry them, and the ops refuse them by name until then.
struct AttentionHeads {
  int64_t n_head = 0, n_kv_head = 0;
  int window = 0;
};

// Causal attention over qkv [B, T, (n_head + 2 n_kv_head) * hd] -> out [B, T, n_head * hd],
// saving lse [B, n_head, T] (fp32). lengths (optional, uint32 [B]): each sequence's valid
// length (later positions are padding); null = T for all.
void attentionForward(Runtime& rt, Tensor& out, Tensor& lse, const Tensor& qkv, int64_t B,
                      int64_t T, const AttentionHeads& heads, const Tensor* lengths = nullptr);
void attentionBackward(Runtime& rt, Tensor& dqkv, const Tensor& dout, const Tensor& qkv,
                       const Tensor& lse, int64_t B, int64_t T, const AttentionHeads& heads,
                       const Tensor* lengths = nullptr);

// Autoregressive decoding (kernels/cpu/decode_attention.h). k_cache, v_cache [B, n_kv_head,
// S, hd] in qkv's dtype. kvCacheWrite: K and V of qkv [B, n, 3 * C_local] into positions
// pos0..pos0+n-1. decodeAttention: out [B, C_local] = attention of each sequence's query (qkv
// [B, 3 * C_local], at position len - 1) over cache positions < len (window 0 = all);
// lengths (optional, uint32 [B]): each sequence's own length instead (len is their maximum).
void kvCacheWrite(Runtime& rt, Tensor& k_cache, Tensor& v_cache, const Tensor& qkv, int64_t n,
                  int64_t pos0);
void decodeAttention(Runtime& rt, Tensor& out, const Tensor& qkv, const Tensor& k_cache,
                     const Tensor& v_cache, int64_t len, const AttentionHeads& heads,
                     const Tensor* lengths = nullptr);

// Converts between storage types (same shape).
void convert(Runtime& rt, Tensor& dst, const Tensor& src);

}  // namespace kdgrid::ops

namespace kdgrid::ops {

// Vocab-parallel cross-entropy over logits [n, V_local] (fp32) holding vocabulary ids
// [vocab_start, vocab_start + V_local); ids >= vocab_valid are padding (excluded). targets
// [n] (uint32) are global ids, UINT32_MAX = ignore the row; the statistics are fp32 [n].
// Steps (see kernels/cpu/cross_entropy.h): rowStats -> MAX-reduce max over tp -> rescaleSums
// -> SUM-reduce sums and target logits.
struct VocabShard {
  int64_t start = 0, size = 0, valid = 0;
};
void xentRowStats(Runtime& rt, Tensor& local_max, Tensor& local_sum, Tensor& target_logit,
                  const Tensor& logits, const Tensor& targets, const VocabShard& shard);
// sums[0, n) rescaled from local_max to global_max ([n] each).
void xentRescaleSums(Runtime& rt, Tensor& sums, const Tensor& local_max,
                     const Tensor& global_max);
// logits <- (softmax - onehot(target)) * row_scale, in place.
void xentBackwardInPlace(Runtime& rt, Tensor& logits, const Tensor& global_max,
                         const Tensor& global_sum, const Tensor& targets, const VocabShard& shard,
                         float row_scale);

// --- optimizer, norms, adversarial steps (flat fp32 buffers) ---

// AdamW over params, m, v, grads (fp32 [n] each; kernels/cpu/adamw.h); params_copy (bf16/fp16
// [n], optional) receives the updated weights in the compute dtype.
void adamwStep(Runtime& rt, Tensor& params, Tensor& m, Tensor& v, const Tensor& grads,
               Tensor* params_copy, const cpu::AdamWConfig& config, int64_t step,
               float grad_scale, bool apply_weight_decay);
// sum of x[i]^2 (fp32 x, double accumulation; independent of the thread count), returned to
// the host.
double sumSquares(Runtime& rt, const Tensor& x);
// x <- x * factor, in place.
void scale(Runtime& rt, Tensor& x, float factor);
// x <- epsilon * sign(x), in place (0 stays 0): the FGSM step of adversarial training.
void signScale(Runtime& rt, Tensor& x, float epsilon);

}  // namespace kdgrid::ops

namespace kdgrid::ops {
// y[N, C] += b[C] (fp32 bias broadcast over rows).
void addBias(Runtime& rt, Tensor& y, const Tensor& b);
}  // namespace kdgrid::ops
