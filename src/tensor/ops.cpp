// CPU dispatch of the tensor ops: shape checks, then the kernel for the storage type.
// The CUDA backend adds a `device() == Device::kCuda` branch per op.
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
#include "kernels/cpu/layernorm.h"

namespace kdgrid::ops {
namespace {

// Calls f(T{}) with T the C++ type of `dtype`.
template <typename F>
void byType(DType dtype, F&& f) {
  switch (dtype) {
    case DType::kF32:
      return f(float{});
    case DType::kBF16:
      return f(bf16{});
    case DType::kF16:
      return f(f16{});
  }
}

void requireCpu(const Tensor& t, const char* op) {
  KDGRID_CHECK(t.device() == Device::kCpu, "{}: {} is not a host tensor (CUDA ops not built here)",
               op, t.describe());
}

void requireSame(const Tensor& a, const Tensor& b, const char* op) {
  KDGRID_CHECK(a.dtype() == b.dtype() && a.numel() == b.numel(), "{}: {} vs {}", op, a.describe(),
               b.describe());
}

int64_t rowsOf(const Tensor& t) {
  return t.numel() / t.dim(-1);
}

// Profile label "name MxNxK" of a GEMM.
std::string gemmLabel(const char* name, int64_t m, int64_t n, int64_t k) {
  return std::string(name) + " " + std::to_string(m) + "x" + std::to_string(n) + "x" +
         std::to_string(k);
}

// Times the enclosing op under a fixed label when rt.profile is set.
#define KDGRID_OP_TIMER(rt, label) \
  OpTimer op_timer_((rt).profile, [] { return std::string(label); })

}  // namespace

void linearForward(Runtime& rt, Tensor& y, const Tensor& x, const Tensor& w, const Tensor* b) {
  requireCpu(x, "linearForward");
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
  call.a = x.raw();
  call.lda = in;
  call.b = w.raw();
  call.ldb = in;
  call.c = y.raw();
  call.ldc = out;
  call.bias = b ? b->data<float>() : nullptr;
  OpTimer timer(
      rt.profile, [&] { return gemmLabel("linear.fwd", n, out, in); }, 2.0 * n * out * in);
  cpu::gemm(rt.gemm, call);
}

void linearBackward(Runtime& rt, Tensor* dx, bool accumulate, Tensor* dw, Tensor* db,
                    const Tensor& dy, const Tensor& x, const Tensor& w, bool assign_dw) {
  requireCpu(dy, "linearBackward");
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
    call.a = dy.raw();
    call.lda = out;
    call.b = x.raw();
    call.ldb = in;
    call.c = dw->data<float>();
    call.ldc = in;
    OpTimer timer(
        rt.profile, [&] { return gemmLabel("linear.bwd.dw", out, in, n); }, 2.0 * n * in * out);
    cpu::gemm(rt.gemm, call);
  }
  if (db) {
    KDGRID_OP_TIMER(rt, "linear.bwd.db");
    byType(dy.dtype(), [&](auto t) {
      using T = decltype(t);
      cpu::biasGradColumnSum(db->data<float>(), dy.data<T>(), n, out);
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
    call.a = dy.raw();
    call.lda = out;
    call.b = w.raw();
    call.ldb = in;
    call.c = dx->raw();
    call.ldc = in;
    OpTimer timer(
        rt.profile, [&] { return gemmLabel("linear.bwd.dx", n, in, out); }, 2.0 * n * in * out);
    cpu::gemm(rt.gemm, call);
  }
}

void layernormForward(Runtime& rt, Tensor& y, Tensor& mean, Tensor& rstd, const Tensor& x,
                      const Tensor& w, const Tensor& b) {
  KDGRID_OP_TIMER(rt, "layernorm.fwd");
  requireCpu(x, "layernormForward");
  requireSame(y, x, "layernormForward");
  byType(x.dtype(), [&](auto t) {
    using T = decltype(t);
    cpu::layerNormForward(y.data<T>(), mean.data<float>(), rstd.data<float>(), x.data<T>(),
                          w.data<float>(), b.data<float>(), rowsOf(x), x.dim(-1));
  });
}

void layernormBackward(Runtime& rt, Tensor& dx, bool accumulate, Tensor& dw, Tensor& db,
                       const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                       const Tensor& w) {
  KDGRID_OP_TIMER(rt, "layernorm.bwd");
  requireCpu(x, "layernormBackward");
  requireSame(dx, x, "layernormBackward");
  requireSame(dy, x, "layernormBackward");
  byType(x.dtype(), [&](auto t) {
    using T = decltype(t);
    cpu::layerNormBackward(dx.data<T>(), dw.data<float>(), db.data<float>(), dy.data<T>(),
                           x.data<T>(), w.data<float>(), mean.data<float>(), rstd.data<float>(),
                           rowsOf(x), x.dim(-1), accumulate);
  });
}

void geluForward(Runtime& rt, Tensor& y, const Tensor& x) {
  KDGRID_OP_TIMER(rt, "gelu.fwd");
  requireCpu(x, "geluForward");
  requireSame(y, x, "geluForward");
  byType(x.dtype(), [&](auto t) {
    using T = decltype(t);
    cpu::geluForward(y.data<T>(), x.data<T>(), x.numel());
  });
}

void geluForwardWithDerivative(Runtime& rt, Tensor& y, Tensor& deriv, const Tensor& x) {
  KDGRID_OP_TIMER(rt, "gelu.fwd");
  requireCpu(x, "geluForwardWithDerivative");
  requireSame(y, x, "geluForwardWithDerivative");
  requireSame(deriv, x, "geluForwardWithDerivative");
  KDGRID_CHECK(y.raw() != x.raw() && y.raw() != deriv.raw(),
               "geluForwardWithDerivative: y may not alias x or deriv");
  byType(x.dtype(), [&](auto t) {
    using T = decltype(t);
    cpu::geluForwardWithDerivative(y.data<T>(), deriv.data<T>(), x.data<T>(), x.numel());
  });
}

void geluBackwardFromDerivative(Runtime& rt, Tensor& dx, const Tensor& dy, const Tensor& deriv) {
  KDGRID_OP_TIMER(rt, "gelu.bwd");
  requireCpu(deriv, "geluBackwardFromDerivative");
  requireSame(dx, deriv, "geluBackwardFromDerivative");
  requireSame(dy, deriv, "geluBackwardFromDerivative");
  byType(deriv.dtype(), [&](auto t) {
    using T = decltype(t);
    cpu::geluBackwardFromDerivative(dx.data<T>(), dy.data<T>(), deriv.data<T>(), deriv.numel());
  });
}

void add(Runtime& rt, Tensor& out, const Tensor& a, const Tensor& b) {
  KDGRID_OP_TIMER(rt, "add");
  requireCpu(a, "add");
  requireSame(out, a, "add");
  requireSame(a, b, "add");
  byType(a.dtype(), [&](auto t) {
    using T = decltype(t);
    cpu::residualAdd(out.data<T>(), a.data<T>(), b.data<T>(), a.numel());
  });
}

void addBias(Runtime& rt, Tensor& y, const Tensor& b) {
  KDGRID_OP_TIMER(rt, "addBias");
  requireCpu(y, "addBias");
  const int64_t cols = y.dim(-1), rows = rowsOf(y);
  KDGRID_CHECK(b.numel() == cols, "addBias: y {} b {}", y.describe(), b.describe());
  byType(y.dtype(), [&](auto t) {
    using T = decltype(t);
    cpu::addBias(y.data<T>(), b.data<float>(), rows, cols);
  });
}

void embeddingForward(Runtime& rt, Tensor& out, const uint32_t* ids, int64_t B, int64_t T,
                      const Tensor& tok_emb, int64_t vocab_start, const Tensor* pos_emb) {
  KDGRID_OP_TIMER(rt, "embedding.fwd");
  requireCpu(out, "embeddingForward");
  KDGRID_CHECK(out.numel() == B * T * tok_emb.dim(1), "embeddingForward: out {} tok_emb {}",
               out.describe(), tok_emb.describe());
  byType(out.dtype(), [&](auto t) {
    using Ty = decltype(t);
    cpu::embeddingForward(out.data<Ty>(), ids, tok_emb.data<float>(),
                          pos_emb ? pos_emb->data<float>() : nullptr, B, T, tok_emb.dim(1),
                          vocab_start, tok_emb.dim(0), pos_emb != nullptr);
  });
}

void embeddingBackward(Runtime& rt, Tensor& dtok_emb, Tensor* dpos_emb, const Tensor& dout,
                       const uint32_t* ids, int64_t B, int64_t T, int64_t vocab_start) {
  KDGRID_OP_TIMER(rt, "embedding.bwd");
  requireCpu(dout, "embeddingBackward");
  byType(dout.dtype(), [&](auto t) {
    using Ty = decltype(t);
    cpu::embeddingBackward(dtok_emb.data<float>(), dpos_emb ? dpos_emb->data<float>() : nullptr,
                           dout.data<Ty>(), ids, B, T, dtok_emb.dim(1), vocab_start,
                           dtok_emb.dim(0));
  });
}

void attentionForward(Runtime& rt, Tensor& out, Tensor& lse, const Tensor& qkv, int64_t B,
                      int64_t T, int64_t n_head_local, int window) {
  KDGRID_OP_TIMER(rt, "attention.fwd");
  requireCpu(qkv, "attentionForward");
  const int64_t C = out.dim(-1);
  KDGRID_CHECK(qkv.numel() == B * T * 3 * C && out.numel() == B * T * C &&
                   lse.numel() == B * n_head_local * T && C % n_head_local == 0,
               "attentionForward: qkv {} out {} lse {}", qkv.describe(), out.describe(),
               lse.describe());
  byType(qkv.dtype(), [&](auto t) {
    using Ty = decltype(t);
    cpu::attentionForward(out.data<Ty>(), lse.data<float>(), qkv.data<Ty>(), B, T, C,
                          C / n_head_local, window);
  });
}

void attentionBackward(Runtime& rt, Tensor& dqkv, const Tensor& dout, const Tensor& qkv,
                       const Tensor& lse, int64_t B, int64_t T, int64_t n_head_local, int window) {
  KDGRID_OP_TIMER(rt, "attention.bwd");
  requireCpu(qkv, "attentionBackward");
  requireSame(dqkv, qkv, "attentionBackward");
  const int64_t C = dout.dim(-1);
  KDGRID_CHECK(dout.numel() * 3 == qkv.numel() && dout.dtype() == qkv.dtype(),
               "attentionBackward: dout {} qkv {}", dout.describe(), qkv.describe());
  byType(qkv.dtype(), [&](auto t) {
    using Ty = decltype(t);
    cpu::attentionBackward(dqkv.data<Ty>(), dout.data<Ty>(), qkv.data<Ty>(), lse.data<float>(), B,
                           T, C, C / n_head_local, window);
  });
}

namespace {
// The cache's [B, nh, S, hd] and the checks shared by the decoding ops.
void checkKvCache(const Tensor& k_cache, const Tensor& v_cache, const Tensor& qkv,
                  const char* op) {
  requireCpu(k_cache, op);
  requireCpu(qkv, op);
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
  checkKvCache(k_cache, v_cache, qkv, "kvCacheWrite");
  const int64_t B = k_cache.dim(0), nh = k_cache.dim(1), S = k_cache.dim(2), hd = k_cache.dim(3);
  KDGRID_CHECK(qkv.numel() == B * n * 3 * nh * hd && pos0 >= 0 && pos0 + n <= S,
               "kvCacheWrite: qkv {} rows {}..{} into {}", qkv.describe(), pos0, pos0 + n - 1,
               k_cache.describe());
  byType(qkv.dtype(), [&](auto t) {
    using Ty = decltype(t);
    cpu::kvCacheWrite(k_cache.data<Ty>(), v_cache.data<Ty>(), qkv.data<Ty>(), B, n, pos0, S,
                      nh * hd, hd);
  });
}

void decodeAttention(Runtime& rt, Tensor& out, const Tensor& qkv, const Tensor& k_cache,
                     const Tensor& v_cache, int64_t len, int window) {
  KDGRID_OP_TIMER(rt, "attention.decode");
  checkKvCache(k_cache, v_cache, qkv, "decodeAttention");
  const int64_t B = k_cache.dim(0), nh = k_cache.dim(1), S = k_cache.dim(2), hd = k_cache.dim(3);
  KDGRID_CHECK(qkv.numel() == B * 3 * nh * hd && out.numel() == B * nh * hd &&
                   out.dtype() == qkv.dtype() && len >= 1 && len <= S,
               "decodeAttention: qkv {} out {} length {} over {}", qkv.describe(), out.describe(),
               len, k_cache.describe());
  byType(qkv.dtype(), [&](auto t) {
    using Ty = decltype(t);
    cpu::decodeAttention(out.data<Ty>(), qkv.data<Ty>(), k_cache.data<Ty>(), v_cache.data<Ty>(),
                         B, len, S, nh * hd, hd, window);
  });
}

void convert(Runtime& rt, Tensor& dst, const Tensor& src) {
  KDGRID_OP_TIMER(rt, "convert");
  requireCpu(src, "convert");
  KDGRID_CHECK(dst.numel() == src.numel(), "convert: {} -> {}", src.describe(), dst.describe());
  byType(dst.dtype(), [&](auto d) {
    byType(src.dtype(), [&](auto s) {
      using D = decltype(d);
      using S = decltype(s);
      if constexpr (std::is_same_v<D, S>) {
        std::copy_n(src.data<S>(), src.numel(), dst.data<D>());
      } else if constexpr (std::is_same_v<D, float> || std::is_same_v<S, float>) {
        cpu::convertBuffer(dst.data<D>(), src.data<S>(), src.numel());
      } else {
        KDGRID_CHECK(false, "convert: {} -> {} is not supported", src.describe(), dst.describe());
      }
    });
  });
}

void xentRowStats(Runtime& rt, float* local_max, float* local_sum, float* target_logit,
                  const Tensor& logits, const uint32_t* targets, const VocabShard& shard) {
  KDGRID_OP_TIMER(rt, "xent.fwd");
  requireCpu(logits, "xentRowStats");
  cpu::xentRowStats(local_max, local_sum, target_logit, logits.data<float>(), targets,
                    rowsOf(logits), {shard.start, shard.size, shard.valid});
}

void xentRescaleSums(Runtime& rt, float* sums, const float* local_max, const float* global_max,
                     int64_t rows) {
  KDGRID_OP_TIMER(rt, "xent.rescale");
  cpu::xentRescaleSums(sums, local_max, global_max, rows);
}

void xentBackwardInPlace(Runtime& rt, Tensor& logits, const float* global_max,
                         const float* global_sum, const uint32_t* targets, const VocabShard& shard,
                         float row_scale) {
  KDGRID_OP_TIMER(rt, "xent.bwd");
  requireCpu(logits, "xentBackwardInPlace");
  cpu::xentBackwardInPlace(logits.data<float>(), global_max, global_sum, targets, rowsOf(logits),
                           {shard.start, shard.size, shard.valid}, row_scale);
}

}  // namespace kdgrid::ops
