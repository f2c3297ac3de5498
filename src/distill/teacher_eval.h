// `kdgrid eval --teacher`: the student's loss as evaluateLoss (same windows, same dealing over
// data-parallel ranks), plus how close it is to a teacher on the same windows: kl_to_teacher =
// mean KL(p_teacher || p_student) at temperature 1 (nats per target token) and
// top1_agreement = the fraction of target positions where the two argmaxes agree.
#pragma once

#include <cstdint>

#include "data/token_stream.h"
#include "src/model/gpt2.h"
#include "src/parallel/grid.h"

namespace kdgrid {

struct TeacherEvalResult {
  double loss = 0;            // student's mean cross-entropy, nats
  int64_t tokens = 0;         // target tokens scored
  double kl_to_teacher = 0;   // nats per token
  double top1_agreement = 0;  // fraction in [0, 1]
};

// `teacher` runs on the same grid (loadTeacher). Every rank returns the same result.
TeacherEvalResult evaluateAgainstTeacher(Gpt2Stage& student, Gpt2Stage& teacher, ProcessGrid& grid,
                                         const TokenStream& data, int64_t max_tokens, int batch);

}  // namespace kdgrid
