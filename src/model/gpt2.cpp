#include "src/model/gpt2.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "src/model/xent_stats.h"
#include "src/tensor/ops.h"
#include "src/tensor/staging.h"

namespace kdgrid {

namespace {
std::string blockName(int layer, const char* what) {
  return "blocks." + std::to_string(layer) + "." + what;
}
}  // namespace

Gpt2Stage::Gpt2Stage(const ModelConfig& config, int pp, int stage, Communicator& tp_comm,
                     DType compute, Recompute recompute, Runtime& rt)
    : rt_(rt),
      config_(config),
      pp_(pp),
      stage_(stage),
      layers_(stageLayers(config.n_layer, pp, stage)),
      tp_(tp_comm),
      compute_(compute),
      recompute_(recompute),
      layout_(config, pp, stage, tp_comm.size(), tp_comm.rank()) {
  const int tp = tp_.size();
  c_local_ = config_.d_model / tp;
  f_local_ = config_.d_ff / tp;
  nh_local_ = config_.n_head / tp;
  vocab_local_ = vocabRowsPerRank(config_.vocab_size, tp);
  vocab_start_ = tp_.rank() * vocab_local_;
  const int64_t n = static_cast<int64_t>(layout_.totalElements());
  params_ = rt_.zeros({n}, DType::kF32);
  grads_ = rt_.zeros({n}, DType::kF32);
  if (compute_ != DType::kF32) compute_params_ = rt_.zeros({n}, compute_);
}

Tensor Gpt2Stage::param(const std::string& name) {
  const LocalParam& p = layout_.find(name);
  return Tensor::view(params_.data<float>() + p.offset, {p.local_rows, p.local_cols},
                      DType::kF32, params_.backend());
}

Tensor Gpt2Stage::grad(const std::string& name) {
  const LocalParam& p = layout_.find(name);
  return Tensor::view(grads_.data<float>() + p.offset, {p.local_rows, p.local_cols},
                      DType::kF32, grads_.backend());
}

Tensor Gpt2Stage::computeWeight(const std::string& name) {
  if (compute_ == DType::kF32) return param(name);
  const LocalParam& p = layout_.find(name);
  return Tensor::view(static_cast<char*>(compute_params_.raw()) + p.offset * dtypeSize(compute_),
                      {p.local_rows, p.local_cols}, compute_, compute_params_.backend());
}

void Gpt2Stage::zeroGrads() {
  grads_.zero();
  weight_grads_zero_ = true;
}

void Gpt2Stage::syncComputeWeights() {
  if (compute_ == DType::kF32) return;
  ops::convert(rt_, compute_params_, params_);
}

const Tensor& Gpt2Stage::forward(StageActivations& acts, const uint32_t* ids, const Tensor* input,
                                 int64_t B, int64_t T, const Tensor* x0_delta) {
  const int64_t N = B * T, C = config_.d_model;
  acts.B = B;
  acts.T = T;
  acts.blocks.resize(layers_.end - layers_.begin);
  Tensor x = act({N, C}, compute_);
  if (firstStage()) {
    acts.ids = act({B, T}, DType::kU32);
    copyFromHost(acts.ids, ids);
    // Vocab-parallel embedding: each tp rank adds its rows; tp rank 0 adds the positions.
    Tensor pos = param("pos_emb");
    ops::embeddingForward(rt_, x, acts.ids, param("tok_emb"), vocab_start_,
                          tp_.rank() == 0 ? &pos : nullptr);
    if (tp_.size() > 1) tp_.allReduceSum(x);
    if (x0_delta) {
      KDGRID_CHECK(x0_delta->numel() == N * C && x0_delta->dtype() == compute_,
                   "embedding perturbation mis-sized or of another dtype");
      ops::add(rt_, x, x, *x0_delta);
    }
  } else {
    KDGRID_CHECK(input && input->numel() == N * C, "stage input missing or mis-sized");
    copyTensor(x, *input);
  }
  for (int l = layers_.begin; l < layers_.end; ++l) {
    BlockActivations& a = acts.blocks[l - layers_.begin];
    a.x_in = x;
    Tensor x_out = act({N, C}, compute_);
    blockForward(l, a, B, T, &x_out);
    if (recompute_ == Recompute::kFull) {
      Tensor x_in = a.x_in;  // all backward keeps of the block
      a = BlockActivations{};
      a.x_in = x_in;
    } else if (recompute_ == Recompute::kSelective) {
      a.fc1 = a.gelu = Tensor();
    }
    x = x_out;
  }
  acts.out = x;
  if (lastStage()) {
    acts.lnf = act({N, C}, compute_);
    acts.lnf_mean = act({N}, DType::kF32);
    acts.lnf_rstd = act({N}, DType::kF32);
    ops::layernormForward(rt_, acts.lnf, acts.lnf_mean, acts.lnf_rstd, acts.out,
                          param("ln_f.weight"), param("ln_f.bias"));
  }
  return acts.out;
}

// Without x_out (recompute in backward) the block stops after the MLP's GELU: the rest of the
// forward (fc2, the residual add) produces nothing its backward reads.
void Gpt2Stage::blockForward(int l, BlockActivations& a, int64_t B, int64_t T, Tensor* x_out) {
  const int64_t N = B * T, C = config_.d_model;
  auto w = [&](const char* what) { return computeWeight(blockName(l, what)); };
  auto p = [&](const char* what) { return param(blockName(l, what)); };
  a.ln1 = act({N, C}, compute_);
  a.ln1_mean = act({N}, DType::kF32);
  a.ln1_rstd = act({N}, DType::kF32);
  ops::layernormForward(rt_, a.ln1, a.ln1_mean, a.ln1_rstd, a.x_in, p("ln1.weight"), p("ln1.bias"));
  a.qkv = act({N, 3 * c_local_}, compute_);
  Tensor qkv_b = p("attn.qkv.bias");
  ops::linearForward(rt_, a.qkv, a.ln1, w("attn.qkv.weight"), &qkv_b);
  a.att = act({N, c_local_}, compute_);
  a.att_lse = act({B, nh_local_, T}, DType::kF32);
  ops::attentionForward(rt_, a.att, a.att_lse, a.qkv, B, T, attentionHeads());
  // Row-parallel projection: with tp > 1, partial sums over tp, then the (replicated) bias
  // once; with tp == 1 the GEMM adds the bias as it stores (one rounding to the compute type
  // instead of two, and no extra pass).
  Tensor proj = act({N, C}, compute_);
  rowParallelLinear(proj, a.att, w("attn.out.weight"), p("attn.out.bias"));
  a.x_mid = act({N, C}, compute_);
  ops::add(rt_, a.x_mid, a.x_in, proj);

  a.ln2 = act({N, C}, compute_);
  a.ln2_mean = act({N}, DType::kF32);
  a.ln2_rstd = act({N}, DType::kF32);
  ops::layernormForward(rt_, a.ln2, a.ln2_mean, a.ln2_rstd, a.x_mid, p("ln2.weight"),
                        p("ln2.bias"));
  recomputeMlp(l, a);
  if (!x_out) return;
  rowParallelLinear(proj, a.gelu, w("mlp.fc2.weight"), p("mlp.fc2.bias"));
  ops::add(rt_, *x_out, a.x_mid, proj);
}

void Gpt2Stage::rowParallelLinear(Tensor& y, const Tensor& x, const Tensor& w, const Tensor& b) {
  if (tp_.size() == 1) {
    ops::linearForward(rt_, y, x, w, &b);
    return;
  }
  ops::linearForward(rt_, y, x, w, nullptr);
  tp_.allReduceSum(y);
  ops::addBias(rt_, y, b);
}

// fc1 and GELU from ln2: the forward's MLP front half, also what selective recompute redoes.
void Gpt2Stage::recomputeMlp(int l, BlockActivations& a) {
  const int64_t N = a.ln2.dim(0);
  a.fc1 = act({N, f_local_}, compute_);
  Tensor fc1_b = param(blockName(l, "mlp.fc1.bias"));
  ops::linearForward(rt_, a.fc1, a.ln2, computeWeight(blockName(l, "mlp.fc1.weight")), &fc1_b);
  a.gelu = act({N, f_local_}, compute_);
  // fc1's output is read again only for gelu' in the backward: keep gelu' in its place, so
  // the backward is one multiply instead of a second exponential per element.
  ops::geluForwardWithDerivative(rt_, a.gelu, a.fc1, a.fc1);
}

LossSums Gpt2Stage::headForwardBackward(StageActivations& acts, const uint32_t* targets,
                                        float grad_scale, Tensor* dout) {
  const ops::VocabShard shard{vocab_start_, vocab_local_, config_.vocab_size};
  const int64_t N = acts.B * acts.T;
  Tensor all_targets = act({N}, DType::kU32);  // [N] on the backend
  copyFromHost(all_targets, targets);
  // Per chunk: the statistics on the backend; the loss sums formed on the host from a staged
  // copy of them.
  std::vector<float> host_max, host_sums;
  auto cross_entropy = [&](Tensor& lg, int64_t r0, int64_t n, bool backward) {
    const Tensor row_targets = all_targets.rows(r0, n);
    const XentStats st = reduceXentStats(rt_, tp_, lg, row_targets, shard);
    host_max.resize(n);
    host_sums.resize(2 * n);
    copyToHost(st.global_max, host_max.data());
    copyToHost(st.sums, host_sums.data());
    LossSums chunk;
    for (int64_t i = 0; i < n; ++i) {
      if (targets[r0 + i] == UINT32_MAX) continue;
      chunk.ce_sum += std::log(double(host_sums[i])) + host_max[i] - host_sums[n + i];
      chunk.tokens += 1;
    }
    if (backward) {
      ops::xentBackwardInPlace(rt_, lg, st.global_max, st.sumExp(), row_targets, shard,
                               grad_scale);
    }
    return chunk;
  };
  return headLossChunks(acts, cross_entropy, grad_scale > 0, dout);
}

void Gpt2Stage::logitsAt(const StageActivations& acts, int64_t row, float* logits) {
  KDGRID_CHECK(lastStage() && tp_.size() == 1, "logitsAt needs the whole vocabulary on this rank");
  Tensor out = act({1, config_.vocab_size}, DType::kF32);
  Tensor emb = computeWeight("tok_emb");
  ops::linearForward(rt_, out, acts.lnf.rows(row, 1), emb, nullptr);
  copyToHost(out, logits);
}

Tensor Gpt2Stage::backward(StageActivations& acts, Tensor dout, Tensor* d_x0) {
  const int64_t B = acts.B, T = acts.T, N = B * T, C = config_.d_model;
  KDGRID_CHECK(dout.numel() == N * C && dout.dtype() == compute_,
               "backward: dout {} for [{}, {}] {}", dout.describe(), N, C, dtypeName(compute_));
  // dx: the gradient of the residual stream, updated in place from d(stage output) down to
  // d(stage input). Activation gradients that have the shape of a saved activation go into
  // that activation's buffer once backward has read it (linearBackward forms the weight
  // gradient before the input gradient), so the backward adds only dqkv to the saved set.
  Tensor dx = dout;
  // Weight gradients still all zero (zeroGrads()): the GEMMs write them.
  const bool assign = weight_grads_zero_;
  weight_grads_zero_ = false;
  for (int l = layers_.end - 1; l >= layers_.begin; --l) {
    BlockActivations& a = acts.blocks[l - layers_.begin];
    if (recompute_ == Recompute::kFull) {
      blockForward(l, a, B, T, nullptr);
    } else if (recompute_ == Recompute::kSelective) {
      recomputeMlp(l, a);
    }
    auto w = [&](const char* what) { return computeWeight(blockName(l, what)); };
    auto p = [&](const char* what) { return param(blockName(l, what)); };
    auto g = [&](const char* what) { return grad(blockName(l, what)); };
    // x_out = x_mid + fc2(gelu(fc1(ln2(x_mid)))): dx is d x_out.
    Tensor dw = g("mlp.fc2.weight"), db = g("mlp.fc2.bias");
    Tensor dgelu = a.gelu;  // d gelu over gelu
    ops::linearBackward(rt_, &dgelu, false, &dw, &db, dx, a.gelu, w("mlp.fc2.weight"), assign);
    ops::geluBackwardFromDerivative(rt_, dgelu, dgelu, a.fc1);  // now d fc1
    dw = g("mlp.fc1.weight");
    db = g("mlp.fc1.bias");
    Tensor dln = a.ln2;  // d ln2 over ln2
    ops::linearBackward(rt_, &dln, false, &dw, &db, dgelu, a.ln2, w("mlp.fc1.weight"), assign);
    a.fc1 = a.gelu = dgelu = Tensor();
    if (tp_.size() > 1) tp_.allReduceSum(dln);
    dw = g("ln2.weight");
    db = g("ln2.bias");
    // dx += LayerNorm backward: the residual path and the MLP branch; dx is now d x_mid.
    ops::layernormBackward(rt_, dx, true, dw, db, dln, a.x_mid, a.ln2_mean, a.ln2_rstd,
                           p("ln2.weight"));
    a.ln2 = a.ln2_mean = a.ln2_rstd = a.x_mid = dln = Tensor();
    // x_mid = x_in + out(attention(qkv(ln1(x_in)))): dx is d x_mid.
    dw = g("attn.out.weight");
    db = g("attn.out.bias");
    Tensor datt = a.att;  // d att over att
    ops::linearBackward(rt_, &datt, false, &dw, &db, dx, a.att, w("attn.out.weight"), assign);
    Tensor dqkv = act({N, 3 * c_local_}, compute_);
    ops::attentionBackward(rt_, dqkv, datt, a.qkv, a.att_lse, B, T, attentionHeads());
    a.att = a.att_lse = a.qkv = datt = Tensor();
    dw = g("attn.qkv.weight");
    db = g("attn.qkv.bias");
    dln = a.ln1;  // d ln1 over ln1
    ops::linearBackward(rt_, &dln, false, &dw, &db, dqkv, a.ln1, w("attn.qkv.weight"), assign);
    dqkv = Tensor();
    if (tp_.size() > 1) tp_.allReduceSum(dln);
    dw = g("ln1.weight");
    db = g("ln1.bias");
    ops::layernormBackward(rt_, dx, true, dw, db, dln, a.x_in, a.ln1_mean, a.ln1_rstd,
                           p("ln1.weight"));
    a = BlockActivations{};  // this block's backward is done
  }
  if (!firstStage()) return dx;
  if (d_x0) *d_x0 = dx;
  Tensor dtok = grad("tok_emb"), dpos = grad("pos_emb");
  // dx is identical on every tp rank, so each computes the (replicated) position gradient.
  ops::embeddingBackward(rt_, dtok, &dpos, dx, acts.ids, vocab_start_);
  return Tensor();
}

}  // namespace kdgrid
