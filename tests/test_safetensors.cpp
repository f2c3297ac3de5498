// The safetensors reader/writer (checkpoints/hf/safetensors.h): a float32 round trip, the on-disk
// layout (little-endian length, space-padded header, 8-byte aligned data section), F16/BF16
// conversion, and that every kind of corrupt file is a UsageError naming the file and tensor.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "checkpoints/hf/safetensors.h"
#include "src/core/check.h"
#include "src/core/dtype.h"
#include "tests/test_util.h"

namespace kdgrid {
namespace {

std::string readBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void writeBytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// A file from a header text (given verbatim) and a data section.
std::string rawFile(const std::string& header, const std::string& data, uint64_t length_field) {
  std::string f(8, '\0');
  for (int i = 0; i < 8; ++i) f[i] = static_cast<char>((length_field >> (8 * i)) & 0xff);
  return f + header + data;
}
std::string rawFile(const std::string& header, const std::string& data) {
  return rawFile(header, data, header.size());
}

TEST(Safetensors, Float32RoundTripAndLayout) {
  test::TempDir dir;
  const std::string path = dir / "m.safetensors";
  SafetensorsWriter w;
  w.setMetadata("format", "pt");
  w.add("a.weight", {2, 3}, {1.f, -2.f, 3.5f, 1e-30f, -0.f, 65504.f});
  w.add("b", {3}, {7.f, 8.f, 9.f});  // 12 bytes: the next tensor starts 4- not 8-aligned
  w.add("scalar", {}, {42.f});
  w.write(path);

  const std::string bytes = readBytes(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ((8 + n) % 8, 0u) << "the data section must start 8-byte aligned";
  const nlohmann::json header = nlohmann::json::parse(bytes.substr(8, n));
  EXPECT_EQ(header["__metadata__"]["format"], "pt");
  EXPECT_EQ(header["a.weight"]["dtype"], "F32");
  EXPECT_EQ(header["a.weight"]["shape"], nlohmann::json({2, 3}));
  EXPECT_EQ(header["a.weight"]["data_offsets"], nlohmann::json({0, 24}));
  EXPECT_EQ(header["b"]["data_offsets"], nlohmann::json({24, 36}));
  EXPECT_EQ(bytes.size(), 8 + n + 40);
  float first;
  std::memcpy(&first, bytes.data() + 8 + n, 4);
  EXPECT_EQ(first, 1.f);

  const SafetensorsReader r(path);
  EXPECT_EQ(r.metadata().at("format"), "pt");
  ASSERT_EQ(r.entries().size(), 3u);
  const SafetensorsEntry* a = r.find("a.weight");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->shape, std::vector<int64_t>({2, 3}));
  const std::vector<float> av = r.readFloat32(*a);
  const std::vector<float> want = {1.f, -2.f, 3.5f, 1e-30f, -0.f, 65504.f};
  ASSERT_EQ(av.size(), want.size());
  EXPECT_EQ(std::memcmp(av.data(), want.data(), 24), 0) << "bit-exact, -0 included";
  EXPECT_EQ(r.readFloat32(*r.find("scalar")), std::vector<float>({42.f}));
  EXPECT_EQ(r.find("missing"), nullptr);
}

TEST(Safetensors, ReadsF16AndBf16) {
  test::TempDir dir;
  const std::vector<float> values = {1.f, -0.5f, 3.f, 1024.f};
  std::string data;
  for (float x : values) {
    const uint16_t bits = f16(x).bits;
    data.append(reinterpret_cast<const char*>(&bits), 2);
  }
  for (float x : values) {
    const uint16_t bits = bf16(x).bits;
    data.append(reinterpret_cast<const char*>(&bits), 2);
  }
  const std::string header = R"({"h":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]},)"
                             R"("b":{"dtype":"BF16","shape":[4],"data_offsets":[8,16]}})";
  writeBytes(dir / "x.safetensors", rawFile(header, data));
  const SafetensorsReader r(dir / "x.safetensors");
  EXPECT_EQ(r.readFloat32(*r.find("h")), values);
  EXPECT_EQ(r.readFloat32(*r.find("b")), values);
}

TEST(Safetensors, CorruptFilesNameFileAndTensor) {
  test::TempDir dir;
  const std::string path = dir / "bad.safetensors";
  const std::string good_header = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const std::string data(8, '\0');
  auto check = [&](const std::string& bytes, const std::vector<std::string>& parts) {
    writeBytes(path, bytes);
    std::vector<std::string> all = parts;
    all.push_back(path);
    test::expectUsageError([&] { SafetensorsReader r(path); }, all);
  };
  writeBytes(path, rawFile(good_header, data));
  EXPECT_NO_THROW(SafetensorsReader r(path));

  check("abc", {"too short"});
  check(rawFile(good_header, data, 1ull << 40), {"header length"});  // beyond the file
  check(rawFile(good_header, data, 0xffffffffffffffffull), {"header length"});
  check(rawFile(good_header, data, good_header.size() - 3), {"not a JSON object"});
  check(rawFile(good_header, data.substr(0, 5)), {"w", "outside"});  // truncated data
  check(rawFile(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", data),
        {"tensor w", "shape [3]"});  // shape mismatch
  check(rawFile(R"({"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}})",
                data),
        {"tensor w"});  // overflowing shape
  check(rawFile(R"({"w":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})", data),
        {"tensor w", "I64"});
  check(rawFile(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                R"("v":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                data),
        {"overlap"});
  check(rawFile(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", data),
        {"tensor w", "hole"});
  check(rawFile(good_header, data + "xx"), {"trailing"});
  check(rawFile(R"({"w":{"shape":[2],"data_offsets":[0,8]}})", data), {"tensor w", "dtype"});
  check(rawFile(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", data),
        {"tensor w", "non-negative"});
  test::expectUsageError([&] { SafetensorsReader r(dir / "absent.safetensors"); },
                   {"absent.safetensors"});
}

}  // namespace
}  // namespace kdgrid
