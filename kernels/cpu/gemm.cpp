// oneDNN matmul behind the GEMM interface of gemm.h: validation, the primitive cache, fp16
// widening, and the K == 0 case (no product: C = beta * C + bias).
#include "kernels/cpu/gemm.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <limits>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <unordered_map>
#include <vector>

#include "src/core/check.h"

namespace kdgrid::cpu {
namespace {

using dnnl::memory;
using Dt = memory::data_type;

Dt dnnlType(DType t) {
  switch (t) {
    case DType::kF32:
      return Dt::f32;
    case DType::kBF16:
      return Dt::bf16;
    case DType::kF16:
      return Dt::f16;
    case DType::kU32:
      break;
  }
  return Dt::undef;
}

bool supportedCombo(DType a, DType b, DType c) {
  if (a != b) return false;
  if (a == DType::kF32) return c == DType::kF32;
  return c == DType::kF32 || c == a;
}

// Where the blocks of one operand lie in memory: `outer` x `inner` blocks, each [rows, cols]
// row-major with leading dimension ld, block (o, i) at element offset o * s_outer + i * s_inner.
// A count of 1 in a level means "not batched" or "broadcast over that level".
struct Layout {
  int64_t rows = 0, cols = 0, ld = 0;
  int64_t outer = 1, inner = 1, s_outer = 0, s_inner = 0;

  int64_t blocks() const { return outer * inner; }
  int64_t offset(int64_t o, int64_t i) const { return o * s_outer + i * s_inner; }
};

// The stored layout of an operand: a batch level whose stride is 0 broadcasts it.
Layout storedLayout(int64_t rows, int64_t cols, int64_t ld, const GemmBatch& b, int64_t s_outer,
                    int64_t s_inner) {
  Layout l{rows, cols, ld, b.outer, b.inner, s_outer, s_inner};
  if (s_outer == 0) l.outer = 1;
  if (s_inner == 0) l.inner = 1;
  return l;
}

// The same blocks packed densely (what an fp16 operand becomes once widened to fp32).
Layout compactLayout(const Layout& l) {
  Layout c = l;
  c.ld = l.cols;
  c.s_inner = l.rows * l.cols;
  c.s_outer = l.inner * c.s_inner;
  return c;
}

// The oneDNN descriptor of an operand whose logical (untransposed) matrix is [rows', cols']
// = trans ? [cols, rows] : [rows, cols]. Batch levels with count 1 in the whole call are left
// out, so a plain product is a 2-D matmul (the case oneDNN's brgemm kernels are tuned for).
memory::desc operandDesc(const Layout& l, bool trans, Dt type, const GemmBatch& call_batch) {
  memory::dims dims, strides;
  const int64_t block = l.rows * l.ld;  // a harmless stride for a size-1 dimension
  if (call_batch.outer > 1) {
    dims.push_back(l.outer);
    strides.push_back(l.outer > 1 ? l.s_outer : block);
  }
  if (call_batch.inner > 1) {
    dims.push_back(l.inner);
    strides.push_back(l.inner > 1 ? l.s_inner : block);
  }
  if (trans) {
    dims.insert(dims.end(), {l.cols, l.rows});
    strides.insert(strides.end(), {1, l.ld});
  } else {
    dims.insert(dims.end(), {l.rows, l.cols});
    strides.insert(strides.end(), {l.ld, 1});
  }
  return memory::desc(dims, type, strides);
}

// The fp32 bias [n] as a (1, ..., 1, n) tensor of the call's rank.
memory::desc biasDesc(int64_t n, const GemmBatch& call_batch) {
  const size_t nd = 2 + (call_batch.outer > 1) + (call_batch.inner > 1);
  memory::dims dims(nd, 1), strides(nd, n);
  dims.back() = n;
  strides.back() = 1;
  return memory::desc(dims, Dt::f32, strides);
}

// True when the rows of all output blocks of C ([m rows of n elements] per block) are pairwise
// disjoint, so no two results land on the same element.
bool outputsDisjoint(const GemmCall& c) {
  std::vector<int64_t> starts;
  starts.reserve(static_cast<size_t>(c.batch.outer * c.batch.inner * c.m));
  for (int64_t o = 0; o < c.batch.outer; ++o)
    for (int64_t i = 0; i < c.batch.inner; ++i)
      for (int64_t r = 0; r < c.m; ++r)
        starts.push_back(o * c.batch.c_outer + i * c.batch.c_inner + r * c.ldc);
  std::sort(starts.begin(), starts.end());
  for (size_t j = 1; j < starts.size(); ++j)
    if (starts[j] - starts[j - 1] < c.n) return false;
  return true;
}

void validate(const GemmCall& c) {
  KDGRID_CHECK(c.m >= 0 && c.n >= 0 && c.k >= 0, "gemm: negative size M={} N={} K={}", c.m, c.n,
               c.k);
  KDGRID_CHECK(supportedCombo(c.type_a, c.type_b, c.type_c),
               "gemm: unsupported type combination {} x {} -> {}", dtypeName(c.type_a),
               dtypeName(c.type_b), dtypeName(c.type_c));
  const int64_t a_cols = c.trans_a ? c.m : c.k;
  const int64_t b_cols = c.trans_b ? c.k : c.n;
  KDGRID_CHECK(c.lda >= std::max<int64_t>(1, a_cols), "gemm: lda={} < {} (trans_a={})", c.lda,
               a_cols, c.trans_a);
  KDGRID_CHECK(c.ldb >= std::max<int64_t>(1, b_cols), "gemm: ldb={} < {} (trans_b={})", c.ldb,
               b_cols, c.trans_b);
  KDGRID_CHECK(c.ldc >= std::max<int64_t>(1, c.n), "gemm: ldc={} < N={}", c.ldc, c.n);
  const GemmBatch& b = c.batch;
  KDGRID_CHECK(b.outer >= 0 && b.inner >= 0, "gemm: negative batch count {} x {}", b.outer,
               b.inner);
  KDGRID_CHECK(b.a_outer >= 0 && b.a_inner >= 0 && b.b_outer >= 0 && b.b_inner >= 0 &&
                   b.c_outer >= 0 && b.c_inner >= 0,
               "gemm: negative batch stride");
  KDGRID_CHECK((b.outer <= 1 || b.c_outer > 0) && (b.inner <= 1 || b.c_inner > 0),
               "gemm: batched outputs need non-zero C strides (got {}, {})", b.c_outer, b.c_inner);
  const bool empty = c.m == 0 || c.n == 0 || b.outer == 0 || b.inner == 0;
  KDGRID_CHECK(empty || c.c != nullptr, "gemm: C is null");
  KDGRID_CHECK(empty || c.k == 0 || (c.a != nullptr && c.b != nullptr), "gemm: A or B is null");
}

// K == 0: there is no product, C = beta * C + bias (beta == 0 does not read C).
template <typename TC>
void scaleOutput(const GemmCall& c) {
  for (int64_t o = 0; o < c.batch.outer; ++o)
    for (int64_t i = 0; i < c.batch.inner; ++i)
      for (int64_t r = 0; r < c.m; ++r) {
        TC* row = static_cast<TC*>(c.c) + o * c.batch.c_outer + i * c.batch.c_inner + r * c.ldc;
        for (int64_t j = 0; j < c.n; ++j) {
          float v = c.beta == 0.0f ? 0.0f : c.beta * toFloat(row[j]);
          if (c.bias) v += c.bias[j];
          row[j] = fromFloat<TC>(v);
        }
      }
}

// fp16 <-> fp32 copies between a stored layout and its compact form (F16C/AVX-512 converts;
// the loops vectorise). Rows are independent: parallel when large enough to pay.
void widenF16(const f16* src, const Layout& l, float* dst) {
  const Layout d = compactLayout(l);
  const int64_t rows = l.blocks() * l.rows;
#pragma omp parallel for schedule(static) if (rows * l.cols > (1 << 16))
  for (int64_t idx = 0; idx < rows; ++idx) {
    const int64_t blk = idx / l.rows, r = idx % l.rows, o = blk / l.inner, i = blk % l.inner;
    const f16* s = src + l.offset(o, i) + r * l.ld;
    float* t = dst + d.offset(o, i) + r * d.ld;
#pragma omp simd
    for (int64_t j = 0; j < l.cols; ++j) t[j] = toFloat(s[j]);
  }
}

void narrowF16(const float* src, const Layout& l, f16* dst) {
  const Layout s = compactLayout(l);
  const int64_t rows = l.blocks() * l.rows;
#pragma omp parallel for schedule(static) if (rows * l.cols > (1 << 16))
  for (int64_t idx = 0; idx < rows; ++idx) {
    const int64_t blk = idx / l.rows, r = idx % l.rows, o = blk / l.inner, i = blk % l.inner;
    const float* f = src + s.offset(o, i) + r * s.ld;
    f16* t = dst + l.offset(o, i) + r * l.ld;
#pragma omp simd
    for (int64_t j = 0; j < l.cols; ++j) t[j] = f16(f[j]);
  }
}

// Everything about a call except its pointers (and whether the bias pointer is null).
using Key = std::array<int64_t, 22>;

Key makeKey(const GemmCall& c) {
  uint32_t alpha_bits, beta_bits;
  std::memcpy(&alpha_bits, &c.alpha, 4);
  std::memcpy(&beta_bits, &c.beta, 4);
  const GemmBatch& b = c.batch;
  const auto type = [](DType t) { return static_cast<int64_t>(t); };
  // clang-format off
  return {c.trans_a, c.trans_b, c.m, c.n, c.k, c.lda, c.ldb, c.ldc,
          type(c.type_a), type(c.type_b), type(c.type_c), alpha_bits, beta_bits, c.bias != nullptr,
          b.outer, b.inner, b.a_outer, b.a_inner, b.b_outer, b.b_inner, b.c_outer, b.c_inner};
  // clang-format on
}

struct KeyHash {
  size_t operator()(const Key& k) const {
    uint64_t h = 0x9e3779b97f4a7c15ull;
    for (int64_t v : k) {
      h ^= static_cast<uint64_t>(v) + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    }
    return static_cast<size_t>(h);
  }
};

// A created primitive and the memory objects it runs with; data handles are set per call.
struct Entry {
  dnnl::matmul prim;
  memory a, b, c, bias, scratch;
  int bias_arg = DNNL_ARG_BIAS;  // or the binary post-op's second source (alpha != 1)
  size_t scratch_bytes = 0;
  bool widen = false;  // f16 operands run through fp32 buffers
  Layout la, lb, lc;   // the operands' layouts as stored by the caller
};

}  // namespace

struct GemmContext::Impl {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  // Guards everything below and every execution: all primitives share `scratch` and the
  // widening buffers (see the header comment on thread safety).
  std::mutex mutex;
  std::unordered_map<Key, Entry, KeyHash> cache;
  std::vector<uint8_t> scratch;               // oneDNN scratchpad, grown to the largest need
  std::vector<float> wide_a, wide_b, wide_c;  // fp32 copies of fp16 operands

  Entry makeEntry(const GemmCall& c);
  void run(Entry& e, const GemmCall& c);
};

GemmContext::GemmContext() : impl_(std::make_unique<Impl>()) {}
GemmContext::~GemmContext() = default;

size_t GemmContext::cachedPrimitives() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->cache.size();
}

Entry GemmContext::Impl::makeEntry(const GemmCall& c) {
  const GemmBatch& bt = c.batch;
  KDGRID_CHECK(bt.outer * bt.inner <= 1 || outputsDisjoint(c),
               "gemm: batched C blocks overlap (M={} N={} ldc={} strides {}, {})", c.m, c.n, c.ldc,
               bt.c_outer, bt.c_inner);
  Entry e;
  e.widen = c.type_a == DType::kF16;  // then B is f16 too (supportedCombo)
  e.la =
      storedLayout(c.trans_a ? c.k : c.m, c.trans_a ? c.m : c.k, c.lda, bt, bt.a_outer, bt.a_inner);
  e.lb =
      storedLayout(c.trans_b ? c.n : c.k, c.trans_b ? c.k : c.n, c.ldb, bt, bt.b_outer, bt.b_inner);
  e.lc = storedLayout(c.m, c.n, c.ldc, bt, bt.c_outer, bt.c_inner);
  const bool widen_c = e.widen && c.type_c == DType::kF16;
  const Dt in_type = e.widen ? Dt::f32 : dnnlType(c.type_a);
  const Dt out_type = widen_c ? Dt::f32 : dnnlType(c.type_c);
  try {
    const memory::desc a_md =
        operandDesc(e.widen ? compactLayout(e.la) : e.la, c.trans_a, in_type, bt);
    const memory::desc b_md =
        operandDesc(e.widen ? compactLayout(e.lb) : e.lb, c.trans_b, in_type, bt);
    const memory::desc c_md =
        operandDesc(widen_c ? compactLayout(e.lc) : e.lc, false, out_type, bt);
    const memory::desc bias_md = biasDesc(c.n, bt);

    // oneDNN 2.6 computes alpha * (A B + bias) with a bias argument, so a bias under alpha != 1
    // goes in as a binary-add post-op after the sum instead: alpha * A B + beta * C + bias.
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    if (c.alpha != 1.0f) attr.set_output_scales(0, {c.alpha});
    dnnl::post_ops ops;
    if (c.beta != 0.0f) ops.append_sum(c.beta);
    const bool bias_post_op = c.bias != nullptr && c.alpha != 1.0f;
    if (bias_post_op) {
      e.bias_arg = DNNL_ARG_ATTR_MULTIPLE_POST_OP(ops.len()) | DNNL_ARG_SRC_1;
      ops.append_binary(dnnl::algorithm::binary_add, bias_md);
    }
    attr.set_post_ops(ops);
    const auto desc = c.bias != nullptr && !bias_post_op
                          ? dnnl::matmul::desc(a_md, b_md, bias_md, c_md)
                          : dnnl::matmul::desc(a_md, b_md, c_md);
    dnnl::matmul::primitive_desc pd(desc, attr, engine);
    e.prim = dnnl::matmul(pd);
    e.scratch_bytes = pd.scratchpad_desc().get_size();
    e.scratch = memory(pd.scratchpad_desc(), engine, DNNL_MEMORY_NONE);
    e.a = memory(a_md, engine, DNNL_MEMORY_NONE);
    e.b = memory(b_md, engine, DNNL_MEMORY_NONE);
    e.c = memory(c_md, engine, DNNL_MEMORY_NONE);
    e.bias = memory(bias_md, engine, DNNL_MEMORY_NONE);
  } catch (const dnnl::error& err) {
    KDGRID_CHECK(false, "gemm: oneDNN matmul setup failed for M={} N={} K={} {}x{}->{}: {}", c.m,
                 c.n, c.k, dtypeName(c.type_a), dtypeName(c.type_b), dtypeName(c.type_c),
                 err.what());
  }
  return e;
}

void GemmContext::Impl::run(Entry& e, const GemmCall& c) {
  const void* a = c.a;
  const void* b = c.b;
  void* out = c.c;
  const bool widen_c = e.widen && c.type_c == DType::kF16;
  if (e.widen) {
    wide_a.resize(std::max<size_t>(wide_a.size(), e.la.blocks() * e.la.rows * e.la.cols));
    wide_b.resize(std::max<size_t>(wide_b.size(), e.lb.blocks() * e.lb.rows * e.lb.cols));
    widenF16(static_cast<const f16*>(c.a), e.la, wide_a.data());
    widenF16(static_cast<const f16*>(c.b), e.lb, wide_b.data());
    a = wide_a.data();
    b = wide_b.data();
  }
  if (widen_c) {
    wide_c.resize(std::max<size_t>(wide_c.size(), e.lc.blocks() * e.lc.rows * e.lc.cols));
    if (c.beta != 0.0f) widenF16(static_cast<const f16*>(c.c), e.lc, wide_c.data());
    out = wide_c.data();
  }
  if (scratch.size() < e.scratch_bytes) scratch.resize(e.scratch_bytes);

  // oneDNN takes non-const handles; it only reads SRC, WEIGHTS and BIAS.
  e.a.set_data_handle(const_cast<void*>(a));
  e.b.set_data_handle(const_cast<void*>(b));
  e.c.set_data_handle(out);
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC, e.a}, {DNNL_ARG_WEIGHTS, e.b}, {DNNL_ARG_DST, e.c}};
  if (c.bias != nullptr) {
    e.bias.set_data_handle(const_cast<float*>(c.bias));
    args.emplace(e.bias_arg, e.bias);
  }
  if (e.scratch_bytes > 0) {
    e.scratch.set_data_handle(scratch.data());
    args.emplace(DNNL_ARG_SCRATCHPAD, e.scratch);
  }
  try {
    e.prim.execute(stream, args);
    stream.wait();
  } catch (const dnnl::error& err) {
    KDGRID_CHECK(false, "gemm: oneDNN matmul failed for M={} N={} K={}: {}", c.m, c.n, c.k,
                 err.what());
  }
  if (widen_c) narrowF16(wide_c.data(), e.lc, static_cast<f16*>(c.c));
}

void gemm(GemmContext& ctx, const GemmCall& call) {
  validate(call);
  if (call.m == 0 || call.n == 0 || call.batch.outer == 0 || call.batch.inner == 0) return;
  if (call.k == 0) {
    switch (call.type_c) {
      case DType::kF32:
        scaleOutput<float>(call);
        break;
      case DType::kBF16:
        scaleOutput<bf16>(call);
        break;
      case DType::kF16:
        scaleOutput<f16>(call);
        break;
      case DType::kU32:
        break;  // refused by supportedCombo
    }
    return;
  }
  GemmContext::Impl& impl = *ctx.impl_;
  std::lock_guard<std::mutex> lock(impl.mutex);
  const Key key = makeKey(call);
  auto it = impl.cache.find(key);
  if (it == impl.cache.end()) it = impl.cache.emplace(key, impl.makeEntry(call)).first;
  impl.run(it->second, call);
}

namespace {

template <typename T>
double peakFlops(GemmContext& ctx, int64_t n, int repeats) {
  const size_t count = static_cast<size_t>(n * n);
  std::vector<T> a(count), b(count), c(count);
  // Small exact values; the figures do not depend on them (no denormals, no NaN).
  for (size_t i = 0; i < count; ++i) {
    a[i] = fromFloat<T>(static_cast<float>(static_cast<int>(i % 17) - 8) / 16.0f);
    b[i] = fromFloat<T>(static_cast<float>(static_cast<int>(i % 13) - 6) / 16.0f);
  }
  double best = 0.0;
  for (int t = 0; t < 4; ++t) {
    const bool ta = t & 1, tb = t & 2;
    for (int r = 0; r <= repeats; ++r) {  // r == 0 warms up (primitive creation, caches)
      const auto start = std::chrono::steady_clock::now();
      gemm(ctx, ta, tb, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
      const double s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (r > 0 && s > 0) best = std::max(best, 2.0 * n * n * n / s);
    }
  }
  return best;
}

}  // namespace

double measureGemmPeakFlops(GemmContext& ctx, DType dtype, int64_t n, int repeats) {
  KDGRID_CHECK(n > 0 && repeats > 0, "measureGemmPeakFlops: n={} repeats={}", n, repeats);
  switch (dtype) {
    case DType::kF32:
      return peakFlops<float>(ctx, n, repeats);
    case DType::kBF16:
      return peakFlops<bf16>(ctx, n, repeats);
    case DType::kF16:
      return peakFlops<f16>(ctx, n, repeats);
    case DType::kU32:
      break;
  }
  return 0.0;
}

}  // namespace kdgrid::cpu
