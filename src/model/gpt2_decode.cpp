// Gpt2Stage's KV-cache decoding (gpt2.h): prefill reuses the training forward (flash
// attention over the prompt) and copies each block's K and V into the cache; a decode step
// runs the blocks on one row per sequence, attending the cached keys with decodeAttention.
// Every op goes through tensor/ops.h, like the rest of the model.
#include <string>

#include "src/model/gpt2.h"
#include "src/tensor/ops.h"
#include "src/tensor/staging.h"

namespace kdgrid {
namespace {
std::string blockName(int layer, const char* what) {
  return "blocks." + std::to_string(layer) + "." + what;
}
}  // namespace

KvCache Gpt2Stage::makeKvCache(int64_t batch) {
  KDGRID_CHECK(firstStage() && lastStage() && tp_.size() == 1,
               "KV-cache decoding needs the whole model on one rank (pp {} tp {})", pp_,
               tp_.size());
  KDGRID_CHECK(batch >= 1, "KV cache for {} sequences", batch);
  const int64_t hd = config_.d_model / config_.n_head;
  KvCache cache;
  cache.batch = batch;
  for (int l = 0; l < config_.n_layer; ++l) {
    // Every position a step reads is written first (positions < len), so no zeroing.
    cache.k.push_back(Tensor::empty({batch, nh_local_, config_.max_seq, hd}, compute_, rt_.backend));
    cache.v.push_back(Tensor::empty({batch, nh_local_, config_.max_seq, hd}, compute_, rt_.backend));
  }
  return cache;
}

void Gpt2Stage::prefill(KvCache& cache, const uint32_t* ids, int64_t n, float* logits) {
  KDGRID_CHECK(static_cast<int>(cache.k.size()) == config_.n_layer && cache.batch >= 1,
               "prefill: a cache of another model");
  KDGRID_CHECK(n >= 1 && n <= config_.max_seq, "prefill: {} tokens for max_seq {}", n,
               config_.max_seq);
  KDGRID_CHECK(recompute_ != Recompute::kFull, "prefill needs the blocks' qkv (recompute full)");
  const int64_t B = cache.batch, V = config_.vocab_size;
  StageActivations acts;
  forward(acts, ids, nullptr, B, n);
  for (int l = 0; l < config_.n_layer; ++l)
    ops::kvCacheWrite(rt_, cache.k[l], cache.v[l], acts.blocks[l].qkv, n, 0);
  cache.len = n;
  Tensor emb = computeWeight("tok_emb");
  Tensor out = act({B, V}, DType::kF32);
  for (int64_t b = 0; b < B; ++b) {
    Tensor row = out.rows(b, 1);
    ops::linearForward(rt_, row, acts.lnf.rows(b * n + n - 1, 1), emb, nullptr);
  }
  copyToHost(out, logits);
}

void Gpt2Stage::decodeStep(KvCache& cache, const uint32_t* ids, float* logits) {
  KDGRID_CHECK(static_cast<int>(cache.k.size()) == config_.n_layer && cache.batch >= 1,
               "decodeStep: a cache of another model");
  KDGRID_CHECK(cache.len < config_.max_seq, "decodeStep: the cache holds max_seq {} positions",
               config_.max_seq);
  const int64_t B = cache.batch, C = config_.d_model, pos = cache.len;
  // The residual stream x [B, C] is updated in place (ops::add allows out == a).
  Tensor x = act({B, C}, compute_);
  const Tensor pos_row = param("pos_emb").rows(pos, 1);  // the embedding adds row 0 of it
  Tensor ids_dev = act({B, 1}, DType::kU32);
  copyFromHost(ids_dev, ids);
  ops::embeddingForward(rt_, x, ids_dev, param("tok_emb"), vocab_start_, &pos_row);
  Tensor ln = act({B, C}, compute_), mean = act({B}, DType::kF32), rstd = act({B}, DType::kF32);
  Tensor qkv = act({B, 3 * c_local_}, compute_), att = act({B, c_local_}, compute_);
  Tensor proj = act({B, C}, compute_);
  Tensor fc1 = act({B, f_local_}, compute_), gelu = act({B, f_local_}, compute_);
  for (int l = 0; l < config_.n_layer; ++l) {
    auto w = [&](const char* what) { return computeWeight(blockName(l, what)); };
    auto p = [&](const char* what) { return param(blockName(l, what)); };
    ops::layernormForward(rt_, ln, mean, rstd, x, p("ln1.weight"), p("ln1.bias"));
    const Tensor qkv_b = p("attn.qkv.bias");
    ops::linearForward(rt_, qkv, ln, w("attn.qkv.weight"), &qkv_b);
    ops::kvCacheWrite(rt_, cache.k[l], cache.v[l], qkv, 1, pos);
    ops::decodeAttention(rt_, att, qkv, cache.k[l], cache.v[l], pos + 1, attentionHeads());
    const Tensor out_b = p("attn.out.bias");
    ops::linearForward(rt_, proj, att, w("attn.out.weight"), &out_b);
    ops::add(rt_, x, x, proj);
    ops::layernormForward(rt_, ln, mean, rstd, x, p("ln2.weight"), p("ln2.bias"));
    const Tensor fc1_b = p("mlp.fc1.bias"), fc2_b = p("mlp.fc2.bias");
    ops::linearForward(rt_, fc1, ln, w("mlp.fc1.weight"), &fc1_b);
    ops::geluForward(rt_, gelu, fc1);
    ops::linearForward(rt_, proj, gelu, w("mlp.fc2.weight"), &fc2_b);
    ops::add(rt_, x, x, proj);
  }
  ops::layernormForward(rt_, ln, mean, rstd, x, param("ln_f.weight"), param("ln_f.bias"));
  Tensor out = act({B, config_.vocab_size}, DType::kF32);
  ops::linearForward(rt_, out, ln, computeWeight("tok_emb"), nullptr);
  copyToHost(out, logits);
  cache.len = pos + 1;
}

}  // namespace kdgrid
