// Validation loss per DESIGN section 2's `eval` windowing: the shards' tokens in order
// (concatenated across shards) as consecutive, non-overlapping windows of max_seq + 1 tokens
// (inputs: the first max_seq; targets: the next token at each position), the incomplete tail
// dropped, stopping after max_tokens target tokens (0 = all). Mean cross-entropy in nats.
#pragma once

#include <cstdint>
#include <string>

#include "data/token_stream.h"
#include "src/model/gpt2.h"
#include "src/parallel/grid.h"
#include "src/tensor/runtime.h"

namespace kdgrid {

struct EvalResult {
  double loss = 0;     // mean cross-entropy, nats
  int64_t tokens = 0;  // target tokens scored
};

// Windows are dealt round-robin to data-parallel ranks, `batch` at a time; sums are reduced
// over dp, so every rank returns the same result.
EvalResult evaluateLoss(Gpt2Stage& model, ProcessGrid& grid, const TokenStream& data,
                        int64_t max_tokens, int batch);

}  // namespace kdgrid
