#include "src/model/params.h"

#include <cmath>
#include <cstring>
#include <random>

namespace kdgrid {

std::vector<ParamSpec> gpt2ParamSpecs(const ModelConfig& c) {
  const int64_t C = c.d_model, F = c.d_ff, V = c.vocab_size;
  constexpr float kStd = 0.02f;  // GPT-2's initialiser
  // Residual projections are scaled by 1/sqrt(2 n_layer): two residual adds per block.
  const float residual_std = kStd / std::sqrt(2.0f * c.n_layer);
  std::vector<ParamSpec> specs;
  auto add = [&](std::string name, int64_t rows, int64_t cols, TpSplit split, Init init,
                 float std, int layer) {
    specs.push_back({std::move(name), rows, cols, split, init, std, cols > 1, layer});
  };
  add("tok_emb", V, C, TpSplit::kVocabRows, Init::kNormal, kStd, -1);
  add("pos_emb", c.max_seq, C, TpSplit::kReplicated, Init::kNormal, kStd, -1);
  for (int i = 0; i < c.n_layer; ++i) {
    const std::string b = "blocks." + std::to_string(i) + ".";
    add(b + "ln1.weight", C, 1, TpSplit::kReplicated, Init::kOnes, 0, i);
    add(b + "ln1.bias", C, 1, TpSplit::kReplicated, Init::kZeros, 0, i);
    add(b + "attn.qkv.weight", 3 * C, C, TpSplit::kQkvRows, Init::kNormal, kStd, i);
    add(b + "attn.qkv.bias", 3 * C, 1, TpSplit::kQkvRows, Init::kZeros, 0, i);
    add(b + "attn.out.weight", C, C, TpSplit::kCols, Init::kNormal, residual_std, i);
    add(b + "attn.out.bias", C, 1, TpSplit::kReplicated, Init::kZeros, 0, i);
    add(b + "ln2.weight", C, 1, TpSplit::kReplicated, Init::kOnes, 0, i);
    add(b + "ln2.bias", C, 1, TpSplit::kReplicated, Init::kZeros, 0, i);
    add(b + "mlp.fc1.weight", F, C, TpSplit::kRows, Init::kNormal, kStd, i);
    add(b + "mlp.fc1.bias", F, 1, TpSplit::kRows, Init::kZeros, 0, i);
    add(b + "mlp.fc2.weight", C, F, TpSplit::kCols, Init::kNormal, residual_std, i);
    add(b + "mlp.fc2.bias", C, 1, TpSplit::kReplicated, Init::kZeros, 0, i);
  }
  add("ln_f.weight", C, 1, TpSplit::kReplicated, Init::kOnes, 0, -1);
  add("ln_f.bias", C, 1, TpSplit::kReplicated, Init::kZeros, 0, -1);
  return specs;
}

StageLayers stageLayers(int n_layer, int pp, int stage) {
  const int base = n_layer / pp, extra = n_layer % pp;
  StageLayers s;
  s.begin = stage * base + std::min(stage, extra);
  s.end = s.begin + base + (stage < extra ? 1 : 0);
  return s;
}

int64_t vocabRowsPerRank(int64_t vocab_size, int tp) { return (vocab_size + tp - 1) / tp; }

ParameterLayout::ParameterLayout(const ModelConfig& c, int pp, int stage, int tp, int tp_rank)
    : config_(c) {
  const StageLayers layers = stageLayers(c.n_layer, pp, stage);
  const bool first = stage == 0, last = stage == pp - 1;
  for (const ParamSpec& spec : gpt2ParamSpecs(c)) {
    const bool owned = spec.layer >= 0 ? (spec.layer >= layers.begin && spec.layer < layers.end)
                       : spec.name == "tok_emb" ? (first || last)
                       : spec.name == "pos_emb" ? first
                                                : last;  // ln_f
    if (!owned) continue;
    LocalParam p;
    p.spec = spec;
    switch (spec.split) {
      case TpSplit::kReplicated:
        p.local_rows = spec.rows;
        p.local_cols = spec.cols;
        p.slabs = {{0, spec.rows, 0, spec.cols, 0}};
        p.tp_replicated = true;
        break;
      case TpSplit::kRows: {
        const int64_t n = spec.rows / tp;
        p.local_rows = n;
        p.local_cols = spec.cols;
        p.slabs = {{tp_rank * n, n, 0, spec.cols, 0}};
        break;
      }
      case TpSplit::kQkvRows: {
        const int64_t block = spec.rows / 3, n = block / tp;  // rows of Q (= K = V); per rank
        p.local_rows = 3 * n;
        p.local_cols = spec.cols;
        for (int64_t q = 0; q < 3; ++q) p.slabs.push_back({q * block + tp_rank * n, n, 0, spec.cols, q * n});
        break;
      }
      case TpSplit::kCols: {
        const int64_t n = spec.cols / tp;
        p.local_rows = spec.rows;
        p.local_cols = n;
        p.slabs = {{0, spec.rows, tp_rank * n, n, 0}};
        break;
      }
      case TpSplit::kVocabRows: {
        const int64_t n = vocabRowsPerRank(spec.rows, tp);
        const int64_t row0 = tp_rank * n;
        const int64_t valid = std::max<int64_t>(0, std::min(n, spec.rows - row0));
        p.local_rows = n;  // rows past `valid` are padding: zero, never trained
        p.local_cols = spec.cols;
        if (valid > 0) p.slabs = {{row0, valid, 0, spec.cols, 0}};
        break;
      }
    }
    p.offset = total_;
    // Keep every tensor 64-byte aligned in the flat buffers (16 floats).
    total_ += (p.numel() + 15) / 16 * 16;
    params_.push_back(std::move(p));
  }
}

const LocalParam& ParameterLayout::find(const std::string& name) const {
  for (const auto& p : params_) if (p.spec.name == name) return p;
  KDGRID_CHECK(false, "parameter '{}' is not held by this rank", name);
  __builtin_unreachable();
}

bool ParameterLayout::has(const std::string& name) const {
  for (const auto& p : params_) if (p.spec.name == name) return true;
  return false;
}

namespace {

// FNV-1a over the name, mixed with the seed through splitmix64: a stable 64-bit key.
uint64_t tensorKey(uint64_t seed, const std::string& name) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : name) h = (h ^ ch) * 1099511628211ull;
  uint64_t z = h ^ (seed + 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

void drawNormal(uint64_t seed, const std::string& name, float std, float* out, size_t n) {
  // mt19937_64 is fully specified by the standard; Box-Muller written out (std::normal_
  // distribution is implementation-defined), so the draws are the same everywhere.
  std::mt19937_64 gen(tensorKey(seed, name));
  constexpr double kTwoPi = 6.283185307179586476925;
  for (size_t i = 0; i < n; i += 2) {
    const double u1 = (static_cast<double>(gen() >> 11) + 1.0) * 0x1.0p-53;  // (0, 1]
    const double u2 = static_cast<double>(gen() >> 11) * 0x1.0p-53;          // [0, 1)
    const double r = std::sqrt(-2.0 * std::log(u1));
    out[i] = static_cast<float>(std * r * std::cos(kTwoPi * u2));
    if (i + 1 < n) out[i + 1] = static_cast<float>(std * r * std::sin(kTwoPi * u2));
  }
}

void initializeParameters(const ParameterLayout& layout, uint64_t seed, float* flat) {
  std::vector<float> full;
  for (const LocalParam& p : layout.params()) {
    const ParamSpec& s = p.spec;
    float* local = flat + p.offset;
    std::memset(local, 0, p.numel() * sizeof(float));
    if (s.init == Init::kZeros) continue;
    full.assign(s.rows * s.cols, 1.0f);
    if (s.init == Init::kNormal) drawNormal(seed, s.name, s.init_std, full.data(), full.size());
    for (const Slab& b : p.slabs) {
      for (int64_t r = 0; r < b.rows; ++r) {
        std::memcpy(local + (b.local_row0 + r) * p.local_cols,
                    full.data() + (b.row0 + r) * s.cols + b.col0, b.cols * sizeof(float));
      }
    }
  }
}

}  // namespace kdgrid
