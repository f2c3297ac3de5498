// ZeRO-1 pieces under mpirun -np 1..4 (MPI_COMM_WORLD as the data-parallel group): AdamW over
// sub-ranges of the flat buffer equals AdamW over all of it, and a ZeRO step (reduce-scatter,
// shard update, all-gather) leaves parameters and moments bit-identical to a plain
// data-parallel step (all-reduce, full update); checkpoints save and load the sharded moments
// in place, each rank its shard, interchangeably with plain ones. Gradients are dyadic, so
// sums are exact in any order and bitwise comparison is fair.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cstring>
#include <vector>


#include "checkpoints/checkpoint.h"
#include "src/inference/model_checkpoint.h"
#include "src/model/params.h"
#include "src/optim/adamw.h"
#include "src/parallel/communicator.h"
#include "src/train/data_parallel.h"
#include "tests/test_util.h"

namespace kdgrid {
namespace {

ModelConfig tinyModel() {
  ModelConfig c;
  c.n_layer = 2;
  c.n_head = 2;
  c.d_model = 8;
  c.d_ff = 16;
  c.vocab_size = 11;
  c.max_seq = 4;
  return c;
}

MpiCommunicator worldComm() {
  MPI_Comm comm;
  MPI_Comm_dup(MPI_COMM_WORLD, &comm);
  return MpiCommunicator("dp", comm);
}

// Gradient of element i at `step` on data-parallel rank `rank`: a multiple of 1/64.
float dyadicGrad(int rank, int step, size_t i) {
  return float(int((i * 31 + rank * 17 + step * 5) % 41) - 20) / 64.0f;
}

const cpu::AdamWConfig kConfig{.weight_decay = 0.1f};

// A host vector as a flat fp32 tensor of the CPU backend.
Tensor flat(std::vector<float>& v) {
  return Tensor::view(v.data(), {static_cast<int64_t>(v.size())}, DType::kF32);
}

TEST(ZeroAdamW, RangesAddUpToTheWholeUpdate) {
  const ParameterLayout layout(tinyModel(), 1, 0, 1, 0);
  const size_t n = layout.totalElements();
  std::vector<float> whole(n), split(n);
  initializeParameters(layout, 3, whole.data());
  split = whole;
  Tensor copy_whole = Tensor::zeros({int64_t(n)}, DType::kBF16);
  Tensor copy_split = Tensor::zeros({int64_t(n)}, DType::kBF16);
  // Cuts that fall inside tensors, on a tensor boundary and at the ends.
  const size_t cuts[] = {0, 7, layout.params()[1].offset, n / 2 + 3, n};
  Runtime rt;
  AdamW full(rt, layout, kConfig);
  std::vector<AdamW> parts;
  for (size_t k = 0; k + 1 < std::size(cuts); ++k) {
    parts.emplace_back(rt, layout, kConfig, cuts[k], cuts[k + 1]);
  }
  std::vector<float> grads(n);
  Tensor whole_t = flat(whole), split_t = flat(split), grads_t = flat(grads);
  for (int step = 1; step <= 3; ++step) {
    for (size_t i = 0; i < n; ++i) grads[i] = dyadicGrad(0, step, i);
    full.step(whole_t, grads_t, &copy_whole, 1e-2f, 0.5f, step);
    for (AdamW& part : parts) part.step(split_t, grads_t, &copy_split, 1e-2f, 0.5f, step);
  }
  EXPECT_EQ(0, std::memcmp(whole.data(), split.data(), n * 4));
  EXPECT_EQ(0, std::memcmp(copy_whole.raw(), copy_split.raw(), n * 2));
  for (AdamW& part : parts) {
    const size_t len = part.end() - part.begin();
    ASSERT_EQ(size_t(part.m().numel()), len);
    EXPECT_EQ(0,
              std::memcmp(full.m().data<float>() + part.begin(), part.m().data<float>(), len * 4));
    EXPECT_EQ(0,
              std::memcmp(full.v().data<float>() + part.begin(), part.v().data<float>(), len * 4));
  }
}

TEST(ZeroDataParallel, MatchesPlainDataParallelBitwise) {
  const ParameterLayout layout(tinyModel(), 1, 0, 1, 0);
  const size_t n = layout.totalElements();
  MpiCommunicator plain_comm = worldComm(), zero_comm = worldComm();
  const int r = plain_comm.rank(), p = plain_comm.size();
  DataParallel plain(plain_comm, n, false), zero(zero_comm, n, true);
  EXPECT_EQ(plain.begin(), 0u);
  EXPECT_EQ(plain.end(), n);
  const FlatShards shards(n, p);
  EXPECT_EQ(zero.begin(), shards.begin(r));
  EXPECT_EQ(zero.end(), shards.end(r));

  std::vector<float> params_plain(n), params_zero(n), grads(n);
  initializeParameters(layout, 5, params_plain.data());
  params_zero = params_plain;
  Runtime rt;
  AdamW opt_plain(rt, layout, kConfig, plain.begin(), plain.end());
  AdamW opt_zero(rt, layout, kConfig, zero.begin(), zero.end());
  Tensor grads_t = flat(grads), params_plain_t = flat(params_plain), params_zero_t = flat(params_zero);
  for (int step = 1; step <= 3; ++step) {
    for (size_t i = 0; i < n; ++i) grads[i] = dyadicGrad(r, step, i);
    plain.reduceGradients(grads_t);
    opt_plain.step(params_plain_t, grads_t, nullptr, 1e-2f, 1.0f, step);

    for (size_t i = 0; i < n; ++i) grads[i] = dyadicGrad(r, step, i);
    zero.reduceGradients(grads_t);
    for (size_t i = zero.begin(); i < zero.end(); ++i) {  // the shard holds the exact sums
      float sum = 0;
      for (int q = 0; q < p; ++q) sum += dyadicGrad(q, step, i);
      ASSERT_EQ(grads[i], sum) << "element " << i;
    }
    opt_zero.step(params_zero_t, grads_t, nullptr, 1e-2f, 1.0f, step);
    zero.gatherParameters(params_zero_t);
  }
  EXPECT_EQ(0, std::memcmp(params_plain.data(), params_zero.data(), n * 4));

  // Checkpoints: each rank saves only its shard of the moments, straight into the full
  // logical datasets; a load without ZeRO gets the plain optimizer's full moments, a load with
  // ZeRO each rank's shard, and a plain save loads into the shards as well.
  const CheckpointMoments zero_view(zero, opt_zero, /*for_save=*/true);
  const RankMoments zero_moments = zero_view.moments();
  EXPECT_EQ(zero_moments.m, opt_zero.m().data<float>());  // the optimizer's own buffers (CPU)
  const RankTensors zero_tensors = modelTensors(layout, r, 0, 0, params_zero.data(), zero_moments);
  size_t held = 0, in_shard = 0;
  for (const LocalTensor& piece : zero_tensors.moment_local) {
    EXPECT_TRUE(piece.writes);
    held += piece.numel();
    ASSERT_LE(piece.offset + piece.numel(), zero.end() - zero.begin()) << piece.logical.name;
  }
  for (const LocalParam& t : layout.params()) {  // the tensors' elements inside the shard
    const size_t lo = std::max(zero.begin(), t.offset);
    const size_t hi = std::min(zero.end(), t.offset + size_t(t.numel()));
    in_shard += hi > lo ? hi - lo : 0;
  }
  EXPECT_EQ(held, in_shard) << "the pieces cover exactly this rank's shard";
  const CheckpointMeta meta = checkpointMeta(tinyModel(), fmt::format("{},1,1", p), "", "");
  TrainingState state;
  state.step = 3;
  test::TempDir dir("kdgrid-zero");
  const std::string zero_saved = saveCheckpoint(dir / "zero", meta, state, zero_tensors, 0);
  const std::string plain_saved = saveCheckpoint(
      dir / "plain", meta, state,
      modelTensors(layout, r, 0, 0, params_plain.data(),
                   CheckpointMoments(plain, opt_plain, /*for_save=*/true).moments()),
      0);

  for (const std::string& saved : {zero_saved, plain_saved}) {
    SCOPED_TRACE(saved);
    AdamW fresh_plain(rt, layout, kConfig, plain.begin(), plain.end());
    std::vector<float> loaded_params(n, 0.0f);  // 0 in the layout's gaps, as params_plain
    CheckpointMoments plain_load(plain, fresh_plain, /*for_save=*/false);
    loadCheckpoint(saved,
                   modelTensors(layout, r, 0, 0, loaded_params.data(), plain_load.moments()));
    plain_load.store();
    EXPECT_EQ(0, std::memcmp(loaded_params.data(), params_plain.data(), n * 4));
    EXPECT_EQ(0, std::memcmp(fresh_plain.m().data<float>(), opt_plain.m().data<float>(), n * 4));
    EXPECT_EQ(0, std::memcmp(fresh_plain.v().data<float>(), opt_plain.v().data<float>(), n * 4));

    AdamW fresh_zero(rt, layout, kConfig, zero.begin(), zero.end());
    CheckpointMoments zero_load(zero, fresh_zero, /*for_save=*/false);
    loadCheckpoint(saved,
                   modelTensors(layout, r, 0, 0, loaded_params.data(), zero_load.moments()));
    zero_load.store();
    EXPECT_EQ(0, std::memcmp(fresh_zero.m().data<float>(), opt_zero.m().data<float>(),
                             (zero.end() - zero.begin()) * 4));
    EXPECT_EQ(0, std::memcmp(fresh_zero.v().data<float>(), opt_zero.v().data<float>(),
                             (zero.end() - zero.begin()) * 4));
  }
}

}  // namespace
}  // namespace kdgrid
