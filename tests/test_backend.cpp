// The backend seam in process: the guarded test device keeps its memory from the host (a
// dereference dies, naming the allocation), the staging calls and the op dispatch reach it,
// ops give the CPU backend's bits on it, and the attention ops refuse what kernels/cpu does not
// compute yet by name.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "kernels/guarded/guarded_backend.h"
#include "src/tensor/ops.h"
#include "src/tensor/runtime.h"
#include "src/tensor/staging.h"

namespace kdgrid {
namespace {

guarded::GuardedBackend& guardedDevice() {
  static guarded::GuardedBackend device(size_t{1} << 28);
  return device;
}

TEST(GuardedDevice, HostCodeCannotTouchItsMemory) {
  Tensor t = Tensor::zeros({1000}, DType::kF32, guardedDevice());
  EXPECT_TRUE(guardedDevice().owns(t.raw()));
  EXPECT_NE(guardedDevice().hostAddress(t.raw()), t.raw());
  EXPECT_DEATH({ static_cast<volatile float*>(t.raw())[10] = 1.0f; },
               "host code touched device memory at .*byte 40 of allocation #[0-9]+ \\(4032 bytes");
}

TEST(GuardedDevice, StagingRoundTripsAndFreedMemoryIsReused) {
  std::vector<float> values(257);
  for (size_t i = 0; i < values.size(); ++i) values[i] = 0.5f * float(i) - 3.0f;
  void* first = nullptr;
  {
    Tensor t = fromHost<float>(values, {257}, guardedDevice());
    first = t.raw();
    EXPECT_EQ(toHost<float>(t), values);
    Tensor u = Tensor::empty({257}, DType::kF32, guardedDevice());
    copyTensor(u, t);
    EXPECT_EQ(toHost<float>(u), values);
  }
  const Tensor again = Tensor::empty({257}, DType::kF32, guardedDevice());
  EXPECT_EQ(again.raw(), first);  // first fit after the frees coalesced
}

// The same ops on both backends: bit-identical outputs (linear, LayerNorm, GELU, embedding).
TEST(GuardedDevice, OpsMatchTheCpuBackendBitForBit) {
  const int64_t N = 24, C = 40, F = 56, V = 31;
  auto values = [](int64_t n, float scale) {
    std::vector<float> v(n);
    for (int64_t i = 0; i < n; ++i) v[i] = scale * float((i * 37) % 101 - 50) / 50.0f;
    return v;
  };
  const std::vector<float> w = values(F * C, 0.2f), b = values(F, 0.1f), g = values(C, 1.0f),
                           beta = values(C, 0.3f), emb = values(V * C, 0.5f);
  std::vector<uint32_t> ids(N);
  for (int64_t i = 0; i < N; ++i) ids[i] = uint32_t((i * 7) % V);
  auto run = [&](Backend& backend) {
    Runtime rt(backend);
    const Tensor ids_t = fromHost<uint32_t>(ids, {2, N / 2}, backend);
    const Tensor emb_t = fromHost<float>(emb, {V, C}, backend);
    Tensor x = Tensor::empty({N, C}, DType::kF32, backend);
    ops::embeddingForward(rt, x, ids_t, emb_t, 0, nullptr);
    Tensor y = Tensor::empty({N, C}, DType::kF32, backend);
    Tensor mean = Tensor::empty({N}, DType::kF32, backend);
    Tensor rstd = Tensor::empty({N}, DType::kF32, backend);
    ops::layernormForward(rt, y, mean, rstd, x, fromHost<float>(g, {C}, backend),
                          fromHost<float>(beta, {C}, backend));
    Tensor h = Tensor::empty({N, F}, DType::kF32, backend);
    const Tensor bias = fromHost<float>(b, {F}, backend);
    ops::linearForward(rt, h, y, fromHost<float>(w, {F, C}, backend), &bias);
    Tensor out = Tensor::empty({N, F}, DType::kF32, backend);
    ops::geluForward(rt, out, h);
    return toHost<float>(out);
  };
  const std::vector<float> cpu = run(hostBackend()), dev = run(guardedDevice());
  ASSERT_EQ(cpu.size(), dev.size());
  EXPECT_EQ(0, std::memcmp(cpu.data(), dev.data(), cpu.size() * sizeof(float)));
}

TEST(Ops, TensorsOfAnotherBackendAreRefused) {
  Runtime rt;  // CPU
  Tensor a = Tensor::zeros({4, 8}, DType::kF32, guardedDevice());
  Tensor out = Tensor::zeros({4, 8}, DType::kF32);
  EXPECT_THROW(ops::add(rt, out, a, a), Error);
}

TEST(Ops, AttentionRefusesWhatTheKernelsDoNotComputeYet) {
  Runtime rt;
  const int64_t B = 1, T = 4, nh = 2, hd = 8, C = nh * hd;
  Tensor qkv = Tensor::zeros({B, T, 3 * C}, DType::kF32),
         out = Tensor::zeros({B, T, C}, DType::kF32);
  Tensor lse = Tensor::zeros({B, nh, T}, DType::kF32);
  ops::attentionForward(rt, out, lse, qkv, B, T, {nh, nh, 0});  // GPT-2: as many KV heads
  try {
    ops::attentionForward(rt, out, lse, qkv, B, T, {nh, 1, 0});
    ADD_FAILURE() << "grouped-query attention accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("grouped-query"), std::string::npos) << e.what();
  }
  const Tensor lengths = Tensor::zeros({B}, DType::kU32);
  EXPECT_THROW(ops::attentionForward(rt, out, lse, qkv, B, T, {nh, nh, 0}, &lengths), Error);
}

}  // namespace
}  // namespace kdgrid
