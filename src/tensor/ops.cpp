// Dispatch of the tensor ops: shape checks, then the kernel of the runtime backend's kernel
// family (kernels/cpu for kHost backends) for the storage type. Kernels see tensors only
// through at<T>() / atRaw().
#include "src/tensor/ops.h"

#include <algorithm>
#include <string>

#include "kernels/cpu/adamw.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/cross_entropy.h"
#include "kernels/cpu/decode_attention.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/gelu.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/layernorm.h"
#include "src/tensor/dispatch.h"

namespace kdgrid::ops {

void linearForward(Runtime& rt, Tensor& y, const Tensor& x, const Tensor& w, const Tensor* b) {
  requireBackend(rt, x, "linearForward");
  const int64_t n = rowsOf(x), in = x.dim(-1), out = w.dim(0);
  KDGRID_CHECK(w.dim(1) == in && y.numel() == n * out && x.dtype() == w.dtype(),
               "linearForward: x {} w {} y {}", x.describe(), w.describe(), y.describe());
  cpu::GemmCall call;
  call.trans_b = true;
  call.m = n;
  call.n = out;
  call.k = in;
  call.type_a = x.dtype();
  call.type_b = w.dtype();
  call.type_c = y.dtype();
  call.a = atRaw(x);
  call.lda = in;
  call.b = atRaw(w);
  call.ldb = in;
  call.c = atRaw(y);
  call.ldc = out;
  call.bias = b ? at<float>(*b) : nullptr;
  OpTimer timer(
      rt.profile, [&] { return gemmLabel("linear.fwd", n, out, in); }, 2.0 * n * out * in);
  cpu::gemm(rt.backend.gemm(), call);
}

void linearBackward(Runtime& rt, Tensor* dx, bool accumulate, Tensor* dw, Tensor* db,
                    const Tensor& dy, const Tensor& x, const Tensor& w, bool assign_dw) {
  requireBackend(rt, dy, "linearBackward");
  const int64_t n = rowsOf(x), in = x.dim(-1), out = w.dim(0);
  KDGRID_CHECK(dy.numel() == n * out && dy.dtype() == x.dtype(), "linearBackward: dy {} x {} w {}",
               dy.describe(), x.describe(), w.describe());
  // Weight and bias gradients first: they read x, which dx may overwrite.
  if (dw) {  // dw[out, in] += dy^T . x, fp32
    cpu::GemmCall call;
    call.trans_a = true;
    call.m = out;
    call.n = in;
    call.k = n;
    call.beta = assign_dw ? 0.0f : 1.0f;
    call.type_a = dy.dtype();
    call.type_b = x.dtype();
    call.type_c = DType::kF32;
    call.a = atRaw(dy);
    call.lda = out;
    call.b = atRaw(x);
    call.ldb = in;
    call.c = at<float>(*dw);
    call.ldc = in;
    OpTimer timer(
        rt.profile, [&] { return gemmLabel("linear.bwd.dw", out, in, n); }, 2.0 * n * in * out);
    cpu::gemm(rt.backend.gemm(), call);
  }
  if (db) {
    KDGRID_OP_TIMER(rt, "linear.bwd.db");
    byType(dy.dtype(), [&](auto t) {
      using T = decltype(t);
      cpu::biasGradColumnSum(at<float>(*db), at<T>(dy), n, out);
    });
  }
  if (dx) {  // dx[n, in] = dy[n, out] . w[out, in]
    cpu::GemmCall call;
    call.m = n;
    call.n = in;
    call.k = out;
    call.beta = accumulate ? 1.0f : 0.0f;
    call.type_a = dy.dtype();
    call.type_b = w.dtype();
    call.type_c = dx->dtype();
    call.a = atRaw(dy);
    call.lda = out;
    call.b = atRaw(w);
    call.ldb = in;
    call.c = atRaw(*dx);
    call.ldc = in;
    OpTimer timer(
        rt.profile, [&] { return gemmLabel("linear.bwd.dx", n, in, out); }, 2.0 * n * in * out);
    cpu::gemm(rt.backend.gemm(), call);
  }
}

void layernormForward(Runtime& rt, Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x,
                      const Tensor& w, const Tensor& b) {
  KDGRID_OP_TIMER(rt, "layernorm.fwd");
  requireBackend(rt, x, "layernormForward");
  requireSame(y, x, "layernormForward");
  byType(x.dtype(), [&](auto t) {
    using T = decltype(t);
    cpu::layerNormForward(at<T>(y), at<float>(mean), at<float>(rstd), at<T>(x), at<float>(w),
                          at<float>(b), rowsOf(x), x.dim(-1));
  });
}

void layernormBackward(Runtime& rt, Tensor& dx, bool accumulate, Tensor& dw, Tensor& db,
                       const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                       const Tensor& w) {
  KDGRID_OP_TIMER(rt, "layernorm.bwd");
  requireBackend(rt, x, "layernormBackward");
  requireSame(dx, x, "layernormBackward");
  requireSame(dy, x, "layernormBackward");
  byType(x.dtype(), [&](auto t) {
    using T = decltype(t);
    cpu::layerNormBackward(at<T>(dx), at<float>(dw), at<float>(db), at<T>(dy), at<T>(x),
                           at<float>(w), at<float>(mean), at<float>(rstd), rowsOf(x), x.dim(-1),
                           accumulate);
  });
}

void geluForward(Runtime& rt, Tensor& y, const Tensor& x) {
  KDGRID_OP_TIMER(rt, "gelu.fwd");
  requireBackend(rt, x, "geluForward");
  requireSame(y, x, "geluForward");
  byType(x.dtype(), [&](auto t) {
    using T = decltype(t);
    cpu::geluForward(at<T>(y), at<T>(x), x.numel());
  });
}

void geluForwardWithDerivative(Runtime& rt, Tensor& y, Tensor& deriv, const Tensor& x) {
  KDGRID_OP_TIMER(rt, "gelu.fwd");
  requireBackend(rt, x, "geluForwardWithDerivative");
  requireSame(y, x, "geluForwardWithDerivative");
  requireSame(deriv, x, "geluForwardWithDerivative");
  KDGRID_CHECK(atRaw(y) != atRaw(x) && atRaw(y) != atRaw(deriv),
               "geluForwardWithDerivative: y may not alias x or deriv");
  byType(x.dtype(), [&](auto t) {
    using T = decltype(t);
    cpu::geluForwardWithDerivative(at<T>(y), at<T>(deriv), at<T>(x), x.numel());
  });
}

void geluBackwardFromDerivative(Runtime& rt, Tensor& dx, const Tensor& dy, const Tensor& deriv) {
  KDGRID_OP_TIMER(rt, "gelu.bwd");
  requireBackend(rt, deriv, "geluBackwardFromDerivative");
  requireSame(dx, deriv, "geluBackwardFromDerivative");
  requireSame(dy, deriv, "geluBackwardFromDerivative");
  byType(deriv.dtype(), [&](auto t) {
    using T = decltype(t);
    cpu::geluBackwardFromDerivative(at<T>(dx), at<T>(dy), at<T>(deriv), deriv.numel());
  });
}

void add(Runtime& rt, Tensor& out, const Tensor& a, const Tensor& b) {
  KDGRID_OP_TIMER(rt, "add");
  requireBackend(rt, a, "add");
  requireSame(out, a, "add");
  requireSame(a, b, "add");
  byType(a.dtype(), [&](auto t) {
    using T = decltype(t);
    cpu::residualAdd(at<T>(out), at<T>(a), at<T>(b), a.numel());
  });
}

void addBias(Runtime& rt, Tensor& y, const Tensor& b) {
  KDGRID_OP_TIMER(rt, "addBias");
  requireBackend(rt, y, "addBias");
  const int64_t cols = y.dim(-1), rows = rowsOf(y);
  KDGRID_CHECK(b.numel() == cols, "addBias: y {} b {}", y.describe(), b.describe());
  byType(y.dtype(), [&](auto t) {
    using T = decltype(t);
    cpu::addBias(at<T>(y), at<float>(b), rows, cols);
  });
}

void embeddingForward(Runtime& rt, Tensor& out, const Tensor& ids, const Tensor& tok_emb,
                      int64_t vocab_start, const Tensor* pos_emb) {
  KDGRID_OP_TIMER(rt, "embedding.fwd");
  requireBackend(rt, out, "embeddingForward");
  requireBackend(rt, ids, "embeddingForward");
  const int64_t B = ids.dim(0), T = ids.dim(1);
  KDGRID_CHECK(ids.shape().size() == 2 && out.numel() == B * T * tok_emb.dim(1),
               "embeddingForward: ids {} out {} tok_emb {}", ids.describe(), out.describe(),
               tok_emb.describe());
  byType(out.dtype(), [&](auto t) {
    using Ty = decltype(t);
    cpu::embeddingForward(at<Ty>(out), at<uint32_t>(ids), at<float>(tok_emb),
                          pos_emb ? at<float>(*pos_emb) : nullptr, B, T, tok_emb.dim(1),
                          vocab_start, tok_emb.dim(0), pos_emb != nullptr);
  });
}

void embeddingBackward(Runtime& rt, Tensor& dtok_emb, Tensor* dpos_emb, const Tensor& dout,
                       const Tensor& ids, int64_t vocab_start) {
  KDGRID_OP_TIMER(rt, "embedding.bwd");
  requireBackend(rt, dout, "embeddingBackward");
  requireBackend(rt, ids, "embeddingBackward");
  const int64_t B = ids.dim(0), T = ids.dim(1);
  KDGRID_CHECK(dout.numel() == B * T * dtok_emb.dim(1), "embeddingBackward: ids {} dout {}",
               ids.describe(), dout.describe());
  byType(dout.dtype(), [&](auto t) {
    using Ty = decltype(t);
    cpu::embeddingBackward(at<float>(dtok_emb), dpos_emb ? at<float>(*dpos_emb) : nullptr,
                           at<Ty>(dout), at<uint32_t>(ids), B, T, dtok_emb.dim(1), vocab_start,
                           dtok_emb.dim(0));
  });
}

namespace {
// What kernels/cpu's attention computes today (ops.h, AttentionHeads).
void requireSupported(const AttentionHeads& heads, const Tensor* lengths, const char* op) {
  KDGRID_CHECK(heads.n_head >= 1 && heads.n_kv_head == heads.n_head,
               "{}: {} query heads over {} key/value heads: kernels/cpu has no grouped-query "
               "attention yet",
               op, heads.n_head, heads.n_kv_head);
  KDGRID_CHECK(lengths == nullptr, "{}: kernels/cpu has no per-sequence lengths yet", op);
}
}  // namespace

void attentionForward(Runtime& rt, Tensor& out, Tensor& lse, const Tensor& qkv, int64_t B,
                      int64_t T, const AttentionHeads& heads, const Tensor* lengths) {
  KDGRID_OP_TIMER(rt, "attention.fwd");
  requireBackend(rt, qkv, "attentionForward");
  requireSupported(heads, lengths, "attentionForward");
  const int64_t n_head_local = heads.n_head;
  const int window = heads.window;
  const int64_t C = out.dim(-1);
  KDGRID_CHECK(qkv.numel() == B * T * 3 * C && out.numel() == B * T * C &&
                   lse.numel() == B * n_head_local * T && C % n_head_local == 0,
               "attentionForward: qkv {} out {} lse {}", qkv.describe(), out.describe(),
               lse.describe());
  byType(qkv.dtype(), [&](auto t) {
    using Ty = decltype(t);
    cpu::attentionForward(at<Ty>(out), at<float>(lse), at<Ty>(qkv), B, T, C, C / n_head_local,
                          window);
  });
}

void attentionBackward(Runtime& rt, Tensor& dqkv, const Tensor& dout, const Tensor& qkv,
                       const Tensor& lse, int64_t B, int64_t T, const AttentionHeads& heads,
                       const Tensor* lengths) {
  KDGRID_OP_TIMER(rt, "attention.bwd");
  requireBackend(rt, qkv, "attentionBackward");
  requireSupported(heads, lengths, "attentionBackward");
  const int64_t n_head_local = heads.n_head;
  const int window = heads.window;
  requireSame(dqkv, qkv, "attentionBackward");
  const int64_t C = dout.dim(-1);
  KDGRID_CHECK(dout.numel() * 3 == qkv.numel() && dout.dtype() == qkv.dtype(),
               "attentionBackward: dout {} qkv {}", dout.describe(), qkv.describe());
  byType(qkv.dtype(), [&](auto t) {
    using Ty = decltype(t);
    cpu::attentionBackward(at<Ty>(dqkv), at<Ty>(dout), at<Ty>(qkv), at<float>(lse), B, T, C,
                           C / n_head_local, window);
  });
}

namespace {
// The cache's [B, nh, S, hd] and the checks shared by the decoding ops.
void checkKvCache(const Runtime& rt, const Tensor& k_cache, const Tensor& v_cache,
                  const Tensor& qkv, const char* op) {
  requireBackend(rt, k_cache, op);
  requireBackend(rt, qkv, op);
  requireSame(k_cache, v_cache, op);
  KDGRID_CHECK(k_cache.shape().size() == 4 && v_cache.shape() == k_cache.shape() &&
                   k_cache.dtype() == qkv.dtype(),
               "{}: caches {} and {} for qkv {}", op, k_cache.describe(), v_cache.describe(),
               qkv.describe());
}
}  // namespace

void kvCacheWrite(Runtime& rt, Tensor& k_cache, Tensor& v_cache, const Tensor& qkv, int64_t n,
                  int64_t pos0) {
  KDGRID_OP_TIMER(rt, "kv_cache.write");
  checkKvCache(rt, k_cache, v_cache, qkv, "kvCacheWrite");
  const int64_t B = k_cache.dim(0), nh = k_cache.dim(1), S = k_cache.dim(2), hd = k_cache.dim(3);
  KDGRID_CHECK(qkv.numel() == B * n * 3 * nh * hd && pos0 >= 0 && pos0 + n <= S,
               "kvCacheWrite: qkv {} rows {}..{} into {}", qkv.describe(), pos0, pos0 + n - 1,
               k_cache.describe());
  byType(qkv.dtype(), [&](auto t) {
    using Ty = decltype(t);
    cpu::kvCacheWrite(at<Ty>(k_cache), at<Ty>(v_cache), at<Ty>(qkv), B, n, pos0, S, nh * hd, hd);
  });
}

void decodeAttention(Runtime& rt, Tensor& out, const Tensor& qkv, const Tensor& k_cache,
                     const Tensor& v_cache, int64_t len, const AttentionHeads& heads,
                     const Tensor* lengths) {
  KDGRID_OP_TIMER(rt, "attention.decode");
  checkKvCache(rt, k_cache, v_cache, qkv, "decodeAttention");
  requireSupported(heads, lengths, "decodeAttention");
  const int window = heads.window;
  const int64_t B = k_cache.dim(0), nh = k_cache.dim(1), S = k_cache.dim(2), hd = k_cache.dim(3);
  KDGRID_CHECK(nh == heads.n_kv_head, "decodeAttention: caches {} for {} key/value heads",
               k_cache.describe(), heads.n_kv_head);
  KDGRID_CHECK(qkv.numel() == B * 3 * nh * hd && out.numel() == B * nh * hd &&
                   out.dtype() == qkv.dtype() && len >= 1 && len <= S,
               "decodeAttention: qkv {} out {} length {} over {}", qkv.describe(), out.describe(),
               len, k_cache.describe());
  byType(qkv.dtype(), [&](auto t) {
    using Ty = decltype(t);
    cpu::decodeAttention(at<Ty>(out), at<Ty>(qkv), at<Ty>(k_cache), at<Ty>(v_cache), B, len, S,
                         nh * hd, hd, window);
  });
}

void convert(Runtime& rt, Tensor& dst, const Tensor& src) {
  KDGRID_OP_TIMER(rt, "convert");
  requireBackend(rt, src, "convert");
  KDGRID_CHECK(dst.numel() == src.numel(), "convert: {} -> {}", src.describe(), dst.describe());
  byType(dst.dtype(), [&](auto d) {
    byType(src.dtype(), [&](auto s) {
      using D = decltype(d);
      using S = decltype(s);
      if constexpr (std::is_same_v<D, S>) {
        std::copy_n(at<S>(src), src.numel(), at<D>(dst));
      } else if constexpr (std::is_same_v<D, float> || std::is_same_v<S, float>) {
        cpu::convertBuffer(at<D>(dst), at<S>(src), src.numel());
      } else {
        KDGRID_CHECK(false, "convert: {} -> {} is not supported", src.describe(), dst.describe());
      }
    });
  });
}

namespace {
void checkRows(const Tensor& t, int64_t rows, const char* what, const char* op) {
  KDGRID_CHECK(t.numel() == rows, "{}: {} {} for {} rows", op, what, t.describe(), rows);
}
}  // namespace

void xentRowStats(Runtime& rt, Tensor& local_max, Tensor& local_sum, Tensor& target_logit,
                  const Tensor& logits, const Tensor& targets, const VocabShard& shard) {
  KDGRID_OP_TIMER(rt, "xent.fwd");
  requireBackend(rt, logits, "xentRowStats");
  const int64_t rows = rowsOf(logits);
  for (const Tensor* t :
       std::initializer_list<const Tensor*>{&local_max, &local_sum, &target_logit, &targets})
    checkRows(*t, rows, "statistic", "xentRowStats");
  cpu::xentRowStats(at<float>(local_max), at<float>(local_sum), at<float>(target_logit),
                    at<float>(logits), at<uint32_t>(targets), rows,
                    {shard.start, shard.size, shard.valid});
}

void xentRescaleSums(Runtime& rt, Tensor& sums, const Tensor& local_max, const Tensor& global_max) {
  KDGRID_OP_TIMER(rt, "xent.rescale");
  requireBackend(rt, sums, "xentRescaleSums");
  const int64_t rows = local_max.numel();
  checkRows(global_max, rows, "global max", "xentRescaleSums");
  KDGRID_CHECK(sums.numel() >= rows, "xentRescaleSums: sums {} for {} rows", sums.describe(), rows);
  cpu::xentRescaleSums(at<float>(sums), at<float>(local_max), at<float>(global_max), rows);
}

void xentBackwardInPlace(Runtime& rt, Tensor& logits, const Tensor& global_max,
                         const Tensor& global_sum, const Tensor& targets, const VocabShard& shard,
                         float row_scale) {
  KDGRID_OP_TIMER(rt, "xent.bwd");
  requireBackend(rt, logits, "xentBackwardInPlace");
  const int64_t rows = rowsOf(logits);
  for (const Tensor* t : {&global_max, &global_sum, &targets})
    checkRows(*t, rows, "statistic", "xentBackwardInPlace");
  cpu::xentBackwardInPlace(at<float>(logits), at<float>(global_max), at<float>(global_sum),
                           at<uint32_t>(targets), rows, {shard.start, shard.size, shard.valid},
                           row_scale);
}

void adamwStep(Runtime& rt, Tensor& params, Tensor& m, Tensor& v, const Tensor& grads,
               Tensor* params_copy, const cpu::AdamWConfig& config, int64_t step, float grad_scale,
               bool apply_weight_decay) {
  KDGRID_OP_TIMER(rt, "adamw");
  requireBackend(rt, params, "adamwStep");
  const int64_t n = params.numel();
  KDGRID_CHECK(m.numel() == n && v.numel() == n && grads.numel() == n &&
                   (!params_copy || params_copy->numel() == n),
               "adamwStep: params {} m {} v {} grads {}", params.describe(), m.describe(),
               v.describe(), grads.describe());
  if (!params_copy) {
    return cpu::adamwStep<float>(at<float>(params), at<float>(m), at<float>(v), at<float>(grads),
                                 nullptr, n, config, step, grad_scale, apply_weight_decay);
  }
  byType(params_copy->dtype(), [&](auto t) {
    using T = decltype(t);
    cpu::adamwStep(at<float>(params), at<float>(m), at<float>(v), at<float>(grads),
                   at<T>(*params_copy), n, config, step, grad_scale, apply_weight_decay);
  });
}

double sumSquares(Runtime& rt, const Tensor& x) {
  KDGRID_OP_TIMER(rt, "sum_squares");
  requireBackend(rt, x, "sumSquares");
  return cpu::sumSquares(at<float>(x), x.numel());
}

void scale(Runtime& rt, Tensor& x, float factor) {
  KDGRID_OP_TIMER(rt, "scale");
  requireBackend(rt, x, "scale");
  byType(x.dtype(), [&](auto t) {
    using T = decltype(t);
    cpu::scaleInPlace(at<T>(x), factor, x.numel());
  });
}

void signScale(Runtime& rt, Tensor& x, float epsilon) {
  KDGRID_OP_TIMER(rt, "sign_scale");
  requireBackend(rt, x, "signScale");
  byType(x.dtype(), [&](auto t) {
    using T = decltype(t);
    T* p = at<T>(x);
    const int64_t n = x.numel();
    for (int64_t i = 0; i < n; ++i) {
      const float value = toFloat(p[i]);
      p[i] = T(value > 0 ? epsilon : value < 0 ? -epsilon : 0.0f);
    }
  });
}

}  // namespace kdgrid::ops
