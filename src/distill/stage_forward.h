// Forward-only passes through the pipeline outside the training schedule (evaluation against a
// teacher, teacher-logit extraction).
#pragma once

#include <cstdint>

#include "src/model/gpt2.h"
#include "src/parallel/communicator.h"

namespace kdgrid {

// Tags of forward-only traffic on the pp communicator (the training schedule uses 1 and 2).
inline constexpr int kTagTeacherActivation = 11;
inline constexpr int kTagStudentActivation = 12;

// One micro-batch [B, T] through every stage: the first stage reads `inputs`, each stage
// receives its input from the previous one and sends its output on (tag `tag`; sends completed
// before returning). `acts` holds this stage's activations afterwards; block activations are
// dropped (nothing is kept for a backward), the last stage keeps its final LayerNorm output
// for the LM head.
void forwardThroughStages(Gpt2Stage& model, Communicator& pp, const uint32_t* inputs, int64_t B,
                          int64_t T, StageActivations& acts, int tag);

}  // namespace kdgrid
