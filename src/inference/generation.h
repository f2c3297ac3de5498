// Autoregressive generation with one model on one rank: a TokenDecoder turns a growing
// token sequence into next-token logits, with a KV cache (the default) or by recomputing the
// whole context each token (kept for tests and benchmarks: the reference the cache must
// reproduce); generateTokens samples with it.
//
// Context longer than max_seq (learned absolute positions stop there): the model always sees
// the LAST max_seq tokens at positions 0..max_seq-1 (a sliding context, as before the cache).
// With the cache this is exact too: once the context outgrows the cache, every further token
// re-fills the cache from the last max_seq tokens (a prefill; positions shift, so no cached
// key stays valid), which costs what a recompute step costs. The cache pays off up to max_seq.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <span>
#include <vector>

#include "src/inference/sampling.h"
#include "src/model/gpt2.h"

namespace kdgrid {

enum class DecodePath : uint8_t {
  kKvCache,    // prefill once, then one position per token (Gpt2Stage::decodeStep)
  kRecompute,  // a full forward over the (last max_seq tokens of the) context per token
};

class TokenDecoder {
 public:
  // `model`: the whole model on this rank (pp = tp = 1). Batch of one sequence.
  TokenDecoder(Gpt2Stage& model, DecodePath path);

  // Starts over with `context` (non-empty) and returns its next-token logits [vocab_size]
  // (fp32; valid until the next call).
  std::span<const float> start(std::span<const uint32_t> context);
  // Appends `id` to the context and returns the next-token logits.
  std::span<const float> append(uint32_t id);
  const std::vector<uint32_t>& context() const { return ids_; }

 private:
  // Logits of the last min(max_seq, size) tokens by a full forward (recompute, or a prefill).
  void forwardWindow();

  Gpt2Stage& model_;
  DecodePath path_;
  std::vector<uint32_t> ids_;
  KvCache cache_;
  std::vector<float> logits_;
};

struct GenerateOptions {
  int max_new_tokens = 100;
  int64_t sample_vocab = 0;            // ids >= this are never drawn (0: the model's vocabulary)
  std::optional<uint32_t> stop_token;  // drawing it ends generation (it is not appended)
  SamplingOptions sampling;
};

// Extends `ids` (non-empty) by up to max_new_tokens drawn tokens. `on_logits`, when set, sees
// each step's logits [vocab_size] before the draw (tests compare the decode paths with it).
void generateTokens(Gpt2Stage& model, std::vector<uint32_t>& ids, const GenerateOptions& options,
                    std::mt19937_64& rng, DecodePath path = DecodePath::kKvCache,
                    const std::function<void(std::span<const float>)>& on_logits = {});

}  // namespace kdgrid
