// Reference distillation divergences over the full vocabulary on one rank, in double (see
// cpu/kl.h for the definitions). F is the I/O type (float for fast-vs-reference tests, double
// for finite-difference checks).
#pragma once

#include <cstdint>

#include "kernels/cpu/kl.h"

namespace kdgrid::cpu::ref {

// loss [N] = D(softmax(teacher / T), softmax(student / T)) per row, logits [N, vocab].
template <typename F>
void klForward(F* loss, const F* student, const F* teacher, int64_t rows, int64_t vocab,
               double temperature, Divergence d);

// dstudent [N, vocab] (overwritten) = row_scale * d D / d student.
template <typename F>
void klBackward(F* dstudent, const F* student, const F* teacher, int64_t rows, int64_t vocab,
                double temperature, Divergence d, double row_scale);

// Top-k form, literally as defined: p_s = softmax(student / T) over the full vocabulary,
// restricted to ids [N, k] and renormalised; the teacher's distribution is
// softmax(teacher_scale * logprobs) over the same k ids.
template <typename F>
void klTopkForward(F* loss, const F* student, const uint32_t* ids, const F* logprobs, int64_t k,
                   int64_t rows, int64_t vocab, double temperature, double teacher_scale,
                   Divergence d);

// dstudent [N, vocab] (overwritten) = row_scale * d D / d student (0 outside the k ids).
template <typename F>
void klTopkBackward(F* dstudent, const F* student, const uint32_t* ids, const F* logprobs,
                    int64_t k, int64_t rows, int64_t vocab, double temperature,
                    double teacher_scale, Divergence d, double row_scale);

}  // namespace kdgrid::cpu::ref
