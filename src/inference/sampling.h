// Drawing the next token from a model's logits: temperature, top-k and nucleus (top-p).
#pragma once

#include <cstdint>
#include <random>
#include <span>

namespace kdgrid {

struct SamplingOptions {
  float temperature = 0.8f;  // 0 = greedy (argmax; the seed is not used)
  int top_k = 40;            // sample among the k most likely ids; 0 = all
  float top_p = 0.95f;       // keep the smallest most-likely prefix of this mass; 1 = off
};

// The next id in [0, logits.size()) drawn from logits (unnormalised, fp32): softmax of
// logits / temperature restricted to the top_k largest, then to the nucleus of mass top_p.
// Greedy ties go to the lowest id.
uint32_t sampleToken(std::span<const float> logits, const SamplingOptions& s, std::mt19937_64& rng);

}  // namespace kdgrid
