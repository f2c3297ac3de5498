// Hugging Face GPT-2 interchange (DESIGN section 2, `export` / `import`): kdgrid checkpoints
// <-> a transformers GPT2LMHeadModel directory.
//
//   DIR/config.json             GPT2Config (model_type gpt2)
//   DIR/model.safetensors       "transformer.*" tensors (safetensors.h)
//   DIR/vocab.json, merges.txt  the byte-level BPE tokenizer (GPT2Tokenizer[Fast])
//   DIR/tokenizer_config.json, special_tokens_map.json   (export only)
//
// The two models are the same function (DESIGN section 4 is GPT-2): pre-LayerNorm with eps
// 1e-5, GELU with the tanh approximation (HF "gelu_new"), scale 1/sqrt(head_dim), learned
// positions, LM head tied to the token embedding. HF's Conv1D stores linear weights [in, out]
// where kdgrid stores [out, in], so every linear weight is transposed; c_attn's output columns
// are Q, K, V blocks with head h at columns h*hd.. of each, exactly kdgrid's qkv rows.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "src/model/config.h"

namespace kdgrid {

// The logical float32 tensors of a kdgrid model by checkpoint name (DESIGN section 5), each
// row-major in its checkpoint shape.
using NamedTensors = std::map<std::string, std::vector<float>>;

// Writes DIR (created if needed). The model may not have a sliding attention window
// (UsageError naming --checkpoint: GPT-2 in transformers has none).
void exportHfGpt2(const ModelConfig& config, const NamedTensors& tensors,
                  const Tokenizer& tokenizer, const std::string& dir);

struct HfGpt2Model {
  ModelConfig config;  // attn_window 0, d_ff from n_inner
  NamedTensors tensors;
  Tokenizer tokenizer;
};

// Reads DIR. Throws UsageError naming the file (config.json key, tensor) on anything kdgrid
// cannot represent exactly: another activation or LayerNorm eps, attention scaled otherwise,
// an untied LM head that differs from wte, a missing or extra tensor, a wrong shape, a
// malformed safetensors file, a tokenizer larger than the model's vocabulary.
HfGpt2Model importHfGpt2(const std::string& dir);

}  // namespace kdgrid
