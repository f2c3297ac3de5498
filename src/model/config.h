// Model hyper-parameters (DESIGN section 4) and their command-line group.
#pragma once

#include <cstdint>
#include <string>

#include "src/core/attributes.h"
#include "src/core/options.h"
#include "src/parallel/grid.h"

namespace kdgrid {

struct ModelConfig {
  int n_layer = 4;
  int n_head = 4;
  int d_model = 256;
  int d_ff = 0;           // 0 = 4 * d_model
  int vocab_size = 0;     // 0 = the shards' vocab_size
  int max_seq = 256;      // context length T
  int attn_window = 0;    // 0 = full causal; W > 0: a query sees itself and W-1 keys before it

  int headDim() const { return d_model / n_head; }
  // Parameters of the logical (unsharded) model; the LM head is tied to tok_emb.
  int64_t numParameters() const;
  // Fills the defaults that depend on other values: d_ff = 4 * d_model, vocab_size = the
  // shards' (which it may not be smaller than: the flag is named otherwise).
  void resolve(uint32_t shard_vocab_size);
  // Checks each value; the message names the flag.
  void validate() const;
  std::string summary() const;  // "4 layers, d_model 256, 4 heads, ..."
};

// The checkpoint's /model attributes (DESIGN section 5): architecture, n_layer, n_head,
// d_model, d_ff, vocab_size, max_seq, attn_window.
Attributes modelAttributes(const ModelConfig& config);
// The inverse, checking each value's range; throws UsageError naming the attribute (the caller
// names the file).
ModelConfig modelConfigFromAttributes(const Attributes& attributes);

// GridConfig::resolve, then the model's own checks: heads and d_ff divisible by --tp, at least
// one layer per pipeline stage (OptionError naming the options, the same on every rank).
void resolveGridFor(GridConfig& grid, int world_size, const ModelConfig& model);

// --n-layer --n-head --d-model --d-ff --vocab-size --max-seq --attn-window
po::options_description modelOptions(ModelConfig& config);

}  // namespace kdgrid
