#include "src/model/config.h"

#include <fmt/format.h>

namespace kdgrid {

po::options_description modelOptions(ModelConfig& c) {
  po::options_description o("Model");
  o.add_options()
    ("n-layer", po::value(&c.n_layer)->default_value(c.n_layer), "transformer blocks")
    ("n-head", po::value(&c.n_head)->default_value(c.n_head), "attention heads")
    ("d-model", po::value(&c.d_model)->default_value(c.d_model), "embedding width")
    ("d-ff", po::value(&c.d_ff)->default_value(c.d_ff), "MLP hidden width (0 = 4 * d-model)")
    ("vocab-size", po::value(&c.vocab_size)->default_value(c.vocab_size),
     "vocabulary size (0 = the shards' vocab_size; may not be smaller)")
    ("max-seq", po::value(&c.max_seq)->default_value(c.max_seq), "context length in tokens")
    ("attn-window", po::value(&c.attn_window)->default_value(c.attn_window),
     "sliding attention window (0 = full causal)");
  return o;
}

void ModelConfig::resolve(uint32_t shard_vocab_size) {
  if (d_ff == 0) d_ff = 4 * d_model;
  if (vocab_size == 0) vocab_size = static_cast<int>(shard_vocab_size);
  KDGRID_OPTION_CHECK(vocab_size >= static_cast<int64_t>(shard_vocab_size),
                      "--vocab-size {} is smaller than the shards' vocab_size {}", vocab_size,
                      shard_vocab_size);
}

void ModelConfig::validate() const {
  KDGRID_OPTION_CHECK(n_layer >= 1, "--n-layer must be >= 1 (got {})", n_layer);
  KDGRID_OPTION_CHECK(n_head >= 1, "--n-head must be >= 1 (got {})", n_head);
  KDGRID_OPTION_CHECK(d_model >= 1 && d_model % n_head == 0,
                      "--d-model ({}) must be a positive multiple of --n-head ({})", d_model, n_head);
  KDGRID_OPTION_CHECK(d_ff >= 1, "--d-ff must be >= 1 (got {})", d_ff);
  KDGRID_OPTION_CHECK(vocab_size >= 2, "--vocab-size must be >= 2 (got {})", vocab_size);
  KDGRID_OPTION_CHECK(max_seq >= 1, "--max-seq must be >= 1 (got {})", max_seq);
  KDGRID_OPTION_CHECK(attn_window >= 0, "--attn-window must be >= 0 (got {})", attn_window);
}

int64_t ModelConfig::numParameters() const {
  const int64_t C = d_model, F = d_ff, V = vocab_size;
  const int64_t per_block = 2 * C              // ln1
                            + 3 * C * C + 3 * C  // qkv
                            + C * C + C          // out
                            + 2 * C              // ln2
                            + F * C + F          // fc1
                            + C * F + C;         // fc2
  return V * C + int64_t(max_seq) * C + n_layer * per_block + 2 * C;
}

void resolveGridFor(GridConfig& grid, int world_size, const ModelConfig& model) {
  grid.resolve(world_size);
  const int tp = grid.tp, pp = grid.pp;
  KDGRID_OPTION_CHECK(model.n_head % tp == 0, "--n-head {} is not divisible by --tp {}",
                      model.n_head, tp);
  KDGRID_OPTION_CHECK(model.d_ff % tp == 0, "--d-ff {} is not divisible by --tp {}", model.d_ff,
                      tp);
  KDGRID_OPTION_CHECK(model.n_layer >= pp, "--n-layer {} is smaller than --pp {}", model.n_layer,
                      pp);
}

Attributes modelAttributes(const ModelConfig& c) {
  return {{"architecture", std::string("gpt2")}, {"n_layer", int64_t{c.n_layer}},
          {"n_head", int64_t{c.n_head}},         {"d_model", int64_t{c.d_model}},
          {"d_ff", int64_t{c.d_ff}},             {"vocab_size", int64_t{c.vocab_size}},
          {"max_seq", int64_t{c.max_seq}},       {"attn_window", int64_t{c.attn_window}}};
}

namespace {

// Upper bounds for stored values: far beyond any real model, small enough that shapes built
// from them cannot overflow (rows * cols < 2^62).
constexpr int kMaxDimension = 1 << 24;
constexpr int kMaxLayers = 1 << 16;

const AttributeValue& required(const Attributes& a, const char* name) {
  const AttributeValue* v = findAttribute(a, name);
  if (!v) throw UsageError(fmt::format("missing attribute '{}'", name));
  return *v;
}

int boundedInt(const Attributes& a, const char* name, int min, int max) {
  const auto* v = std::get_if<int64_t>(&required(a, name));
  if (!v) throw UsageError(fmt::format("attribute '{}' is not an integer", name));
  if (*v < min || *v > max) {
    throw UsageError(
        fmt::format("attribute '{}' = {} is outside [{}, {}]", name, *v, min, max));
  }
  return static_cast<int>(*v);
}

}  // namespace

ModelConfig modelConfigFromAttributes(const Attributes& a) {
  const auto* architecture = std::get_if<std::string>(&required(a, "architecture"));
  if (!architecture || *architecture != "gpt2") {
    throw UsageError(fmt::format("architecture '{}' is not 'gpt2'",
                                 attributeText(required(a, "architecture"))));
  }
  ModelConfig c;
  c.n_layer = boundedInt(a, "n_layer", 1, kMaxLayers);
  c.n_head = boundedInt(a, "n_head", 1, kMaxDimension);
  c.d_model = boundedInt(a, "d_model", 1, kMaxDimension);
  c.d_ff = boundedInt(a, "d_ff", 1, kMaxDimension);
  c.vocab_size = boundedInt(a, "vocab_size", 1, kMaxDimension);
  c.max_seq = boundedInt(a, "max_seq", 1, kMaxDimension);
  c.attn_window = boundedInt(a, "attn_window", 0, kMaxDimension);
  if (c.d_model % c.n_head != 0) {
    throw UsageError(
        fmt::format("d_model {} is not a multiple of n_head {}", c.d_model, c.n_head));
  }
  return c;
}

std::string ModelConfig::summary() const {
  return fmt::format("{} layers, d_model {}, {} heads, d_ff {}, vocab {}, max_seq {}{}: {:.2f}M params",
                     n_layer, d_model, n_head, d_ff, vocab_size, max_seq,
                     attn_window ? fmt::format(", window {}", attn_window) : "",
                     numParameters() / 1e6);
}

}  // namespace kdgrid
