// GPT-2 (DESIGN section 4) as run by one rank of the grid: the layers of its pipeline stage,
// sliced for its tensor-parallel index (Megatron: column-parallel QKV and fc1, row-parallel
// attn.out and fc2, vocab-parallel embedding / LM head / cross-entropy).
//
// Tensor-parallel communication points (tp comm), forward | backward:
//   embedding output      all-reduce |  -
//   attn.out, fc2 output  all-reduce |  -
//   ln1 / ln2 output       -         |  all-reduce of its gradient (column-parallel inputs)
//   cross-entropy         max/sum all-reduces of row statistics (no full-vocab logits)
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "src/model/config.h"
#include "src/model/params.h"
#include "src/model/recompute.h"
#include "src/parallel/communicator.h"
#include "src/tensor/ops.h"
#include "src/tensor/runtime.h"
#include "src/tensor/tensor.h"

namespace kdgrid {

// What backward needs from one micro-batch's forward on this stage. `x` tensors are the
// residual stream [N, C]; local widths are C_local = C / tp and F_local = d_ff / tp.
struct BlockActivations {
  Tensor x_in;                     // [N, C] block input (always kept)
  Tensor ln1, ln1_mean, ln1_rstd;  // [N, C], [N], [N]
  Tensor qkv;                      // [N, 3 C_local]
  Tensor att, att_lse;             // [N, C_local], [B, nh_local, T]
  Tensor x_mid;                    // [N, C] after the attention residual add
  Tensor ln2, ln2_mean, ln2_rstd;  // [N, C], [N], [N]
  // [N, F_local] each (dropped under selective/full): gelu' at fc1's output (stored over that
  // output, which nothing else reads) and the GELU output.
  Tensor fc1, gelu;
};

struct StageActivations {
  int64_t B = 0, T = 0;
  Tensor ids;  // [B, T] uint32 inputs (first stage) — kept for the embedding grad
  std::vector<BlockActivations> blocks;
  Tensor out;                      // [N, C] stage output (last block's residual)
  Tensor lnf, lnf_mean, lnf_rstd;  // last stage: final LayerNorm
};

// Per-micro-batch loss statistics on the last stage (sums, so they add over micro-batches
// and ranks).
struct LossSums {
  double ce_sum = 0;     // sum of cross-entropy over target tokens, nats
  double kl_sum = 0;     // sum of the distillation divergence over target tokens (distill only)
  int64_t tokens = 0;
};

// Key/value cache of autoregressive decoding (src/model/gpt2_decode.cpp), for a whole model
// on one rank: per layer K and V [batch, n_head, max_seq, head_dim] in the compute dtype
// (kernels/cpu/decode_attention.h layout). Positions [0, len) of every sequence hold the keys
// and values of the tokens decoded so far; len <= max_seq (learned absolute positions: there
// is no position max_seq).
struct KvCache {
  int64_t batch = 0, len = 0;
  std::vector<Tensor> k, v;  // [n_layer] each
  int64_t capacity() const { return k.empty() ? 0 : k.front().dim(2); }
};

class Gpt2Stage {
 public:
  Gpt2Stage(const ModelConfig& config, int pp, int stage, Communicator& tp_comm, DType compute,
            Recompute recompute, Runtime& rt);

  const ModelConfig& config() const { return config_; }
  const ParameterLayout& layout() const { return layout_; }
  bool firstStage() const { return stage_ == 0; }
  bool lastStage() const { return stage_ == pp_ - 1; }
  DType computeType() const { return compute_; }
  Runtime& runtime() { return rt_; }  // the ops' context (profiling hooks for loss heads)

  // Sets every parameter gradient to 0 and lets the next backward() write the blocks' weight
  // gradients instead of adding to them (the same values; the GEMMs then skip reading the
  // zeros back, ~5-10% faster). Any later backward adds, as usual.
  void zeroGrads();

  // Flat fp32 buffers [layout().totalElements()] over layout(), on the runtime's backend:
  // master weights and gradients.
  Tensor& params() { return params_; }
  Tensor& grads() { return grads_; }
  Tensor param(const std::string& name);  // fp32 master view, local shape
  Tensor grad(const std::string& name);

  // Refreshes the compute-precision weight copies from the fp32 masters (after init or a
  // load; the optimizer writes them itself after a step). Nothing to do in fp32.
  void syncComputeWeights();
  // The compute-precision copy of params() (bf16/fp16 runs), null in fp32.
  Tensor* computeCopy() { return compute_ == DType::kF32 ? nullptr : &compute_params_; }

  // Forward of one micro-batch. First stage: `ids` [B, T]; other stages: `input` [N, C] from
  // the previous stage. Returns the stage output [N, C] (the next stage's input).
  // `x0_delta` (first stage, optional) [N, C] in the compute dtype, identical on every tp rank:
  // added to the embedding output x0 = tok_emb[ids] + pos_emb (adversarial perturbations).
  const Tensor& forward(StageActivations& acts, const uint32_t* ids, const Tensor* input,
                        int64_t B, int64_t T, const Tensor* x0_delta = nullptr);

  // Last stage: cross-entropy of the targets [B, T] (ids >= vocab or UINT32_MAX are skipped),
  // and, when `grad_scale` > 0, its backward with d loss / d logit scaled by grad_scale (e.g.
  // loss_scale / global tokens), leaving d out in `dout` [N, C].
  LossSums headForwardBackward(StageActivations& acts, const uint32_t* targets, float grad_scale,
                               Tensor* dout);

  // Last stage with tp = 1: the logits [vocab_size] at token `row` of the last forward, copied
  // to the host (sampling).
  void logitsAt(const StageActivations& acts, int64_t row, float* logits);

  // --- Autoregressive decoding with a KV cache (src/model/gpt2_decode.cpp): one rank holding
  // the whole model (pp = tp = 1), recompute none or selective. Logits are fp32 [batch,
  // vocab_size] (padding ids included), those of each sequence's newest position.
  // An empty cache (len 0) for `batch` sequences, allocated at full capacity (max_seq).
  KvCache makeKvCache(int64_t batch);
  // Forward over ids [batch, n] (1 <= n <= max_seq) at positions 0..n-1, exactly as forward();
  // fills the cache's positions [0, n) (len = n, whatever it held before) and writes the
  // logits of position n - 1.
  void prefill(KvCache& cache, const uint32_t* ids, int64_t n, float* logits);
  // One token per sequence, ids [batch], at position cache.len (< max_seq): its keys and
  // values join the cache (len + 1) and its logits are written.
  void decodeStep(KvCache& cache, const uint32_t* ids, float* logits);

  // --- LM-head pieces for other losses (distillation, teacher logits): src/model/gpt2_head.cpp.
  // This rank's vocabulary rows: global ids [vocabStart(), vocabStart() + vocabLocal()), ids
  // >= config().vocab_size being padding.
  int64_t vocabStart() const { return vocab_start_; }
  int64_t vocabLocal() const { return vocab_local_; }
  // Last stage: logits [n, V_local] (fp32, overwritten) of rows [r0, r0 + n) of the last
  // forward (the tied LM head over the final LayerNorm output). Forward only.
  void headLogits(const StageActivations& acts, int64_t r0, Tensor& logits);
  // A loss over one chunk of the LM head's logits [n, V_local] (fp32), rows [r0, r0 + n) of the
  // micro-batch: returns its sums and, when `backward`, overwrites the logits with
  // d loss / d logits (already scaled). Its tp reductions are its own.
  using ChunkLoss = std::function<LossSums(Tensor& logits, int64_t r0, int64_t n, bool backward)>;
  // Last stage: headForwardBackward with `loss` in place of cross-entropy: the logits are
  // formed chunk by chunk (bounded memory), `loss` is called on each, and with `backward` the
  // LM head's and final LayerNorm's gradients accumulate and d out lands in `dout` [N, C].
  LossSums headLossChunks(StageActivations& acts, const ChunkLoss& loss, bool backward,
                          Tensor* dout);

  // Backward of one micro-batch given d(stage output) `dout` [N, C], whose memory it reuses:
  // dout's contents are overwritten. Returns d(stage input) [N, C] (in dout's memory; empty
  // on the first stage, which ends in the embedding gradient). Parameter grads accumulate.
  // The micro-batch's activations are released block by block as backward passes them.
  // `d_x0` (first stage, optional): receives d(embedding output x0) [N, C] in the compute dtype
  // (the gradient the embedding backward consumes; identical on every tp rank).
  Tensor backward(StageActivations& acts, Tensor dout, Tensor* d_x0 = nullptr);

 private:
  // x_out null: recompute for backward (stops after the MLP's GELU).
  void blockForward(int layer, BlockActivations& a, int64_t B, int64_t T, Tensor* x_out);
  void recomputeMlp(int layer, BlockActivations& a);
  // y = x . w^T summed over the tp ranks (each holds a slice of the inputs), + b once.
  void rowParallelLinear(Tensor& y, const Tensor& x, const Tensor& w, const Tensor& b);
  Tensor computeWeight(const std::string& name);  // weight in the compute dtype
  // This rank's heads (GPT-2: as many key/value heads as query heads) and the window.
  ops::AttentionHeads attentionHeads() const { return {nh_local_, nh_local_, config_.attn_window}; }
  // An activation-sized tensor from the runtime's pool, contents uninitialised.
  Tensor act(std::vector<int64_t> shape, DType dtype) {
    return rt_.pool.empty(std::move(shape), dtype);
  }

  Runtime& rt_;
  ModelConfig config_;
  int pp_, stage_;
  StageLayers layers_;
  Communicator& tp_;
  DType compute_;
  Recompute recompute_;
  ParameterLayout layout_;
  Tensor params_, grads_;  // fp32 flat [layout_.totalElements()]
  Tensor compute_params_;  // compute-dtype copy of params_ (bf16/fp16 runs only)
  int64_t vocab_start_ = 0, vocab_local_ = 0;
  int64_t c_local_ = 0, f_local_ = 0, nh_local_ = 0;
  bool weight_grads_zero_ = false;  // set by zeroGrads(), cleared by the next backward()
};

}  // namespace kdgrid
