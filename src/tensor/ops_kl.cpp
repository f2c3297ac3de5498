#include "src/tensor/ops_kl.h"

#include "src/tensor/dispatch.h"

namespace kdgrid::ops {

namespace {

// fp32 statistics of `rows` rows, `per_row` values each, on the runtime's backend.
const float* stats(const Runtime& rt, const Tensor& t, int64_t per_row, int64_t rows,
                   const char* op) {
  requireBackend(rt, t, op);
  KDGRID_CHECK(t.numel() >= per_row * rows, "{}: statistics {} for {} x {}", op, t.describe(),
               per_row, rows);
  return at<float>(t);
}
float* stats(const Runtime& rt, Tensor& t, int64_t per_row, int64_t rows, const char* op) {
  return const_cast<float*>(stats(rt, static_cast<const Tensor&>(t), per_row, rows, op));
}

// Student (and teacher) logits [N, slice.size] fp32.
int64_t logitRows(const Runtime& rt, const Tensor& z, const cpu::VocabSlice& slice,
                  const char* op) {
  requireBackend(rt, z, op);
  KDGRID_CHECK(z.shape().size() == 2 && z.dim(1) == slice.size, "{}: logits {} for a slice of {}",
               op, z.describe(), slice.size);
  return z.dim(0);
}

// ids [N, k] uint32 and logprobs [N, k] fp32.
int64_t topkWidth(const Runtime& rt, const Tensor& ids, const Tensor& logprobs, int64_t rows,
                  const char* op) {
  requireBackend(rt, ids, op);
  requireBackend(rt, logprobs, op);
  KDGRID_CHECK(ids.shape() == logprobs.shape() && ids.dim(0) == rows,
               "{}: ids {} logprobs {} for {} rows", op, ids.describe(), logprobs.describe(), rows);
  return ids.dim(1);
}

const float* optional(const Runtime& rt, const Tensor* t, int64_t per_row, int64_t rows,
                      const char* op) {
  return t ? stats(rt, *t, per_row, rows, op) : nullptr;
}

}  // namespace

void klRowStats(Runtime& rt, Tensor& local_max, Tensor& local_sums, const Tensor& student,
                const Tensor& teacher, const cpu::VocabSlice& slice, float temperature,
                cpu::Divergence d) {
  KDGRID_OP_TIMER(rt, "kl.fwd");
  const int64_t n = logitRows(rt, student, slice, "klRowStats");
  KDGRID_CHECK(teacher.shape() == student.shape(), "klRowStats: teacher {} student {}",
               teacher.describe(), student.describe());
  cpu::klRowStats(stats(rt, local_max, cpu::kKlMaxes, n, "klRowStats"),
                  stats(rt, local_sums, cpu::kKlSums, n, "klRowStats"), at<float>(student),
                  at<float>(teacher), n, slice, temperature, d);
}

void klRescaleSums(Runtime& rt, Tensor& sums, const Tensor& local_max, const Tensor& global_max,
                   cpu::Divergence d) {
  KDGRID_OP_TIMER(rt, "kl.rescale");
  const int64_t n = local_max.numel() / cpu::kKlMaxes;
  cpu::klRescaleSums(stats(rt, sums, cpu::kKlSums, n, "klRescaleSums"), at<float>(local_max),
                     stats(rt, global_max, cpu::kKlMaxes, n, "klRescaleSums"), n, d);
}

void klJsdTerms(Runtime& rt, Tensor& terms, const Tensor& student, const Tensor& teacher,
                const Tensor& global_max, const Tensor& global_sums, const cpu::VocabSlice& slice,
                float temperature) {
  KDGRID_OP_TIMER(rt, "kl.jsd");
  const int64_t n = logitRows(rt, student, slice, "klJsdTerms");
  cpu::klJsdTerms(stats(rt, terms, cpu::kJsdTerms, n, "klJsdTerms"), at<float>(student),
                  at<float>(teacher), stats(rt, global_max, cpu::kKlMaxes, n, "klJsdTerms"),
                  stats(rt, global_sums, cpu::kKlSums, n, "klJsdTerms"), n, slice, temperature);
}

void klLoss(Runtime& rt, Tensor& loss, const Tensor& global_sums, const Tensor* jsd_terms,
            cpu::Divergence d) {
  KDGRID_OP_TIMER(rt, "kl.loss");
  const int64_t n = loss.numel();
  cpu::klLoss(stats(rt, loss, 1, n, "klLoss"), stats(rt, global_sums, cpu::kKlSums, n, "klLoss"),
              optional(rt, jsd_terms, cpu::kJsdTerms, n, "klLoss"), n, d);
}

void klBackward(Runtime& rt, Tensor& grad, const Tensor& student, const Tensor& teacher,
                const Tensor& global_max, const Tensor& global_sums, const Tensor& divergence,
                const Tensor* jsd_terms, const cpu::VocabSlice& slice, float temperature,
                cpu::Divergence d, float row_scale, const XentTerm* xent) {
  KDGRID_OP_TIMER(rt, "kl.bwd");
  const int64_t n = logitRows(rt, student, slice, "klBackward");
  KDGRID_CHECK(grad.shape() == student.shape() && teacher.shape() == student.shape(),
               "klBackward: grad {} student {} teacher {}", grad.describe(), student.describe(),
               teacher.describe());
  cpu::XentGradTerm term;
  if (xent) {
    requireBackend(rt, *xent->targets, "klBackward");
    term = {stats(rt, *xent->global_max, 1, n, "klBackward"),
            stats(rt, *xent->global_sum, 1, n, "klBackward"), at<uint32_t>(*xent->targets),
            xent->row_scale};
  }
  cpu::klBackward(at<float>(grad), at<float>(student), at<float>(teacher),
                  stats(rt, global_max, cpu::kKlMaxes, n, "klBackward"),
                  stats(rt, global_sums, cpu::kKlSums, n, "klBackward"),
                  stats(rt, divergence, 1, n, "klBackward"),
                  optional(rt, jsd_terms, cpu::kJsdTerms, n, "klBackward"), n, slice, temperature,
                  d, row_scale, xent ? &term : nullptr);
}

void klTopkRowStats(Runtime& rt, Tensor& local_max, Tensor& local_sums, const Tensor& student,
                    const Tensor& ids, const Tensor& logprobs, const cpu::VocabSlice& slice,
                    float temperature, float teacher_scale, cpu::Divergence d) {
  KDGRID_OP_TIMER(rt, "kl.topk.fwd");
  const int64_t n = logitRows(rt, student, slice, "klTopkRowStats");
  const int64_t k = topkWidth(rt, ids, logprobs, n, "klTopkRowStats");
  cpu::klTopkRowStats(stats(rt, local_max, cpu::kKlMaxes, n, "klTopkRowStats"),
                      stats(rt, local_sums, cpu::kKlSums, n, "klTopkRowStats"), at<float>(student),
                      at<uint32_t>(ids), at<float>(logprobs), k, n, slice, temperature,
                      teacher_scale, d);
}

void klTopkJsdTerms(Runtime& rt, Tensor& terms, const Tensor& student, const Tensor& ids,
                    const Tensor& logprobs, const Tensor& global_max, const Tensor& global_sums,
                    const cpu::VocabSlice& slice, float temperature, float teacher_scale) {
  KDGRID_OP_TIMER(rt, "kl.topk.jsd");
  const int64_t n = logitRows(rt, student, slice, "klTopkJsdTerms");
  const int64_t k = topkWidth(rt, ids, logprobs, n, "klTopkJsdTerms");
  cpu::klTopkJsdTerms(stats(rt, terms, cpu::kJsdTerms, n, "klTopkJsdTerms"), at<float>(student),
                      at<uint32_t>(ids), at<float>(logprobs), k,
                      stats(rt, global_max, cpu::kKlMaxes, n, "klTopkJsdTerms"),
                      stats(rt, global_sums, cpu::kKlSums, n, "klTopkJsdTerms"), n, slice,
                      temperature, teacher_scale);
}

void klTopkBackward(Runtime& rt, Tensor& grad_k, const Tensor& student, const Tensor& ids,
                    const Tensor& logprobs, const Tensor& global_max, const Tensor& global_sums,
                    const Tensor& divergence, const Tensor* jsd_terms,
                    const cpu::VocabSlice& slice, float temperature, float teacher_scale,
                    cpu::Divergence d, float row_scale) {
  KDGRID_OP_TIMER(rt, "kl.topk.bwd");
  const int64_t n = logitRows(rt, student, slice, "klTopkBackward");
  const int64_t k = topkWidth(rt, ids, logprobs, n, "klTopkBackward");
  cpu::klTopkBackward(stats(rt, grad_k, k, n, "klTopkBackward"), at<float>(student),
                      at<uint32_t>(ids), at<float>(logprobs), k,
                      stats(rt, global_max, cpu::kKlMaxes, n, "klTopkBackward"),
                      stats(rt, global_sums, cpu::kKlSums, n, "klTopkBackward"),
                      stats(rt, divergence, 1, n, "klTopkBackward"),
                      optional(rt, jsd_terms, cpu::kJsdTerms, n, "klTopkBackward"), n, slice,
                      temperature, teacher_scale, d, row_scale);
}

void klTopkScatterAdd(Runtime& rt, Tensor& grad, const Tensor& grad_k, const Tensor& ids,
                      const cpu::VocabSlice& slice) {
  KDGRID_OP_TIMER(rt, "kl.topk.scatter");
  const int64_t n = logitRows(rt, grad, slice, "klTopkScatterAdd");
  requireBackend(rt, ids, "klTopkScatterAdd");
  const int64_t k = ids.dim(1);
  cpu::klTopkScatterAdd(at<float>(grad), stats(rt, grad_k, k, n, "klTopkScatterAdd"),
                        at<uint32_t>(ids), k, n, slice);
}

}  // namespace kdgrid::ops
