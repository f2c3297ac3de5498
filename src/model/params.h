// The parameters of GPT-2 (DESIGN sections 4, 5, 7): the logical, unsharded tensors by
// checkpoint name, and what one rank of the grid owns of them.
//
// Every tensor is seen as 2-D [rows, cols] (a vector is [n, 1]). Tensor parallelism splits
// rows (column-parallel QKV and fc1, whose output features are rows; vocab-parallel tok_emb)
// or columns (row-parallel attn.out and fc2, whose input features are columns); the rest is
// replicated. A rank's local tensor is a list of slabs of the logical one, so checkpoints
// read and write slices of the full tensors whatever the grid.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "src/model/config.h"
#include "src/tensor/slab.h"
#include "src/tensor/tensor.h"

namespace kdgrid {

enum class TpSplit : uint8_t {
  kReplicated,  // every tp rank holds the whole tensor
  kRows,        // contiguous row block per tp rank
  kQkvRows,     // qkv: the rank's heads' rows of each of the Q, K and V blocks
  kCols,        // contiguous column block per tp rank
  kVocabRows,   // tok_emb: ceil(V / tp) rows per rank, the vocabulary padded to a multiple of tp
};

enum class Init : uint8_t { kNormal, kZeros, kOnes };

struct ParamSpec {
  std::string name;  // checkpoint dataset name, e.g. "blocks.3.mlp.fc1.weight"
  int64_t rows = 0, cols = 1;
  TpSplit split = TpSplit::kReplicated;
  Init init = Init::kZeros;
  float init_std = 0;   // for kNormal
  bool decay = false;   // weight decay applies (2-D tensors: weights and embeddings)
  int layer = -1;       // block index, -1 for embeddings and ln_f
};

// All parameters of the logical model, in checkpoint order.
std::vector<ParamSpec> gpt2ParamSpecs(const ModelConfig& config);

struct LocalParam {
  ParamSpec spec;
  int64_t local_rows = 0, local_cols = 0;  // local tensor shape (may include vocab padding rows)
  std::vector<Slab> slabs;
  size_t offset = 0;                       // element offset in the flat buffers
  bool tp_replicated = false;              // identical on every tp rank (counted once in norms)
  int64_t numel() const { return local_rows * local_cols; }
};

// Which layers a pipeline stage runs: contiguous and balanced, earlier stages take the extra.
struct StageLayers {
  int begin = 0, end = 0;
};
StageLayers stageLayers(int n_layer, int pp, int stage);

// Vocabulary rows per tensor-parallel rank: ceil(V / tp).
int64_t vocabRowsPerRank(int64_t vocab_size, int tp);

// What this rank owns: the parameters of its stage (tok_emb on the first and last stage,
// pos_emb on the first, ln_f on the last), sliced for its tensor-parallel index, laid out
// back to back in one flat buffer (fp32 master weights, fp32 gradients, AdamW state).
class ParameterLayout {
 public:
  ParameterLayout(const ModelConfig& config, int pp, int stage, int tp, int tp_rank);
  const ModelConfig& config() const { return config_; }
  const std::vector<LocalParam>& params() const { return params_; }
  const LocalParam& find(const std::string& name) const;
  bool has(const std::string& name) const;
  size_t totalElements() const { return total_; }

 private:
  ModelConfig config_;
  std::vector<LocalParam> params_;
  size_t total_ = 0;
};

// Draws every local parameter from (seed, tensor name): each FULL logical tensor is drawn
// and the rank's slabs copied out, so every grid starts from the same weights.
void initializeParameters(const ParameterLayout& layout, uint64_t seed, float* flat);

// Standard normal numbers keyed by (seed, name): the same on every machine and grid.
void drawNormal(uint64_t seed, const std::string& name, float std, float* out, size_t n);

}  // namespace kdgrid
