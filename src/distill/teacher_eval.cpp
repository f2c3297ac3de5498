#include "src/distill/teacher_eval.h"

#include <algorithm>

#include "src/distill/kd_loss.h"
#include "src/distill/stage_forward.h"

namespace kdgrid {
namespace {
// Rows of logits formed at once per model: bounds two [rows, V_local] fp32 buffers.
constexpr int64_t kChunkRows = 256;
}  // namespace

TeacherEvalResult evaluateAgainstTeacher(Gpt2Stage& student, Gpt2Stage& teacher, ProcessGrid& grid,
                                         const TokenStream& data, int64_t max_tokens, int batch) {
  // Windows exactly as evaluateLoss (train/evaluate.cpp), so `loss` is the same number.
  const int64_t T = student.config().max_seq;
  int64_t windows = static_cast<int64_t>(data.size() / (T + 1));
  int64_t budget = windows * T;
  if (max_tokens > 0) budget = std::min(budget, max_tokens);
  windows = (budget + T - 1) / T;
  const int dp = grid.dp(), r = grid.dpRank();
  const cpu::VocabSlice slice{student.vocabStart(), student.vocabLocal(),
                              student.config().vocab_size};

  std::vector<uint32_t> window(T + 1), inputs(batch * T), targets(batch * T);
  AgreementSums totals;
  Tensor student_logits, teacher_logits;
  const int64_t per_rank = (windows + dp - 1) / dp;
  for (int64_t first = 0; first < per_rank; first += batch) {
    std::fill(targets.begin(), targets.end(), UINT32_MAX);
    std::fill(inputs.begin(), inputs.end(), 0);
    for (int b = 0; b < batch && first + b < per_rank; ++b) {
      const int64_t w = (first + b) * dp + r;
      if (w >= windows) break;
      data.read(uint64_t(w) * (T + 1), T + 1, window.data());
      const int64_t scored = std::min<int64_t>(T, budget - w * T);
      std::copy_n(window.begin(), T, inputs.begin() + b * T);
      std::copy_n(window.begin() + 1, scored, targets.begin() + b * T);
    }
    StageActivations sa, ta;
    forwardThroughStages(student, grid.ppComm(), inputs.data(), batch, T, sa,
                         kTagStudentActivation);
    forwardThroughStages(teacher, grid.ppComm(), inputs.data(), batch, T, ta,
                         kTagTeacherActivation);
    if (!grid.lastStage()) continue;
    const int64_t N = int64_t(batch) * T;
    for (int64_t r0 = 0; r0 < N; r0 += kChunkRows) {
      const int64_t n = std::min(kChunkRows, N - r0);
      student_logits = student.runtime().zeros({n, slice.size}, DType::kF32);
      teacher_logits = student.runtime().zeros({n, slice.size}, DType::kF32);
      student.headLogits(sa, r0, student_logits);
      teacher.headLogits(ta, r0, teacher_logits);
      const AgreementSums s = teacherAgreementChunk(student.runtime(), student_logits, teacher_logits,
                                                    targets.data() + r0, slice, grid.tpComm());
      totals.ce_sum += s.ce_sum;
      totals.kl_sum += s.kl_sum;
      totals.agree += s.agree;
      totals.tokens += s.tokens;
    }
  }
  // Only the last stage scored; sum over dp, then share along the pipeline.
  double sums[4] = {totals.ce_sum, totals.kl_sum, double(totals.agree), double(totals.tokens)};
  grid.dpComm().allReduceSum(sums, 4);
  grid.ppComm().allReduceSum(sums, 4);
  TeacherEvalResult out;
  out.tokens = static_cast<int64_t>(sums[3]);
  if (out.tokens > 0) {
    out.loss = sums[0] / sums[3];
    out.kl_to_teacher = sums[1] / sums[3];
    out.top1_agreement = sums[2] / sums[3];
  }
  return out;
}

}  // namespace kdgrid
