// The HDF5 layer: typed round trips, hyperslabs, attributes, strict conversions, size checks
// before allocation, timestamp-free (reproducible) files, and the library lock under threads.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>

#include "data/h5.h"
#include "tests/test_util.h"

namespace kdgrid {
namespace {

using h5::ElemType;

TEST(H5, TypedRoundTripsAndConversions) {
  test::TempDir dir;
  const std::string path = dir / "types.h5";
  std::vector<uint32_t> u32 = {0, 1, 65535, 70000, 4294967295u};
  std::vector<int64_t> i64 = {-5, 0, 1LL << 40};
  std::vector<float> f32 = {0.f, -1.5f, 3.14159f, 65504.f, 1e-3f};
  std::vector<f16> half;
  for (float x : f32) half.emplace_back(x);
  {
    h5::File file = h5::File::create(path);
    file.writeDataset("u32", u32, ElemType::kU32);
    file.writeDataset("i64", i64, ElemType::kI64);
    file.writeDataset("f16", half, ElemType::kF16);
    // float32 in memory stored as float16 in the file: HDF5 converts.
    file.writeDataset("f32_as_f16", f32, ElemType::kF16);
    std::vector<uint16_t> small = {1, 2, 3};
    file.writeDataset("u16_as_u64", small, ElemType::kU64);
    file.close();
  }
  h5::File file = h5::File::openRead(path);
  EXPECT_EQ(file.openDataset("u32").read<uint32_t>(), u32);
  EXPECT_EQ(file.openDataset("u32").read<uint64_t>(),
            std::vector<uint64_t>(u32.begin(), u32.end()));
  EXPECT_EQ(file.openDataset("i64").read<int64_t>(), i64);
  EXPECT_EQ(file.openDataset("u16_as_u64").read<uint16_t>(), (std::vector<uint16_t>{1, 2, 3}));
  EXPECT_EQ(file.openDataset("u16_as_u64").type().describe(), "uint64");
  const auto back = file.openDataset("f16").read<float>();
  const auto converted = file.openDataset("f32_as_f16").read<f16>();
  ASSERT_EQ(back.size(), f32.size());
  for (size_t i = 0; i < f32.size(); ++i) {
    EXPECT_EQ(back[i], static_cast<float>(half[i])) << i;
    EXPECT_EQ(converted[i].bits, half[i].bits) << i;  // HDF5's f32->f16 rounds like the compiler
  }
  EXPECT_EQ(file.openDataset("f16").type().describe(), "float16");

  // Lossy reads abort instead of clamping, naming file and dataset.
  test::expectUsageError([&] { file.openDataset("u32").read<uint16_t>(); }, {path, "/u32"});
  test::expectUsageError([&] { file.openDataset("i64").read<uint64_t>(); }, {path, "/i64"});
}

TEST(H5, HyperslabRowsOf1DAnd2D) {
  test::TempDir dir;
  const std::string path = dir / "rows.h5";
  std::vector<float> matrix(7 * 3);
  for (size_t i = 0; i < matrix.size(); ++i) matrix[i] = static_cast<float>(i);
  std::vector<uint64_t> line(1000);
  for (size_t i = 0; i < line.size(); ++i) line[i] = i * i;
  {
    h5::File file = h5::File::create(path);
    // Tiny chunks so reads cross chunk boundaries.
    file.writeDataset("m", std::span<const float>(matrix), {7, 3}, ElemType::kF32,
                      {.chunk_bytes = 20});
    file.writeDataset("v", line, ElemType::kU64, {.chunk_bytes = 64});
    file.close();
  }
  h5::File file = h5::File::openRead(path);
  h5::Dataset m = file.openDataset("m");
  EXPECT_EQ(m.dims(), (std::vector<uint64_t>{7, 3}));
  EXPECT_EQ(m.read<float>(), matrix);
  EXPECT_EQ(m.readRows<float>(2, 3), std::vector<float>(matrix.begin() + 6, matrix.begin() + 15));
  EXPECT_TRUE(m.readRows<float>(7, 0).empty());
  h5::Dataset v = file.openDataset("v");
  EXPECT_EQ(v.readRows<uint64_t>(123, 456),
            std::vector<uint64_t>(line.begin() + 123, line.begin() + 579));
  test::expectUsageError([&] { v.readRows<uint64_t>(999, 2); }, {path, "/v", "rows [999, 1001)"});
  test::expectUsageError([&] { m.expectRank(1); }, {path, "/m"});
}

TEST(H5, CompressedChunkedDataset) {
  test::TempDir dir;
  const std::string path = dir / "gz.h5";
  std::vector<uint16_t> data(100000, 7);  // compresses well
  for (size_t i = 0; i < data.size(); i += 97) data[i] = static_cast<uint16_t>(i);
  {
    h5::File file = h5::File::create(path);
    file.writeDataset("d", data, ElemType::kU16, {.chunk_bytes = 8192, .deflate_level = 6});
    file.close();
  }
  EXPECT_LT(std::filesystem::file_size(path), data.size() * 2 / 4);
  h5::File file = h5::File::openRead(path);
  EXPECT_EQ(file.openDataset("d").read<uint16_t>(), data);
  EXPECT_EQ(file.openDataset("d").readRows<uint32_t>(5000, 10),
            std::vector<uint32_t>(data.begin() + 5000, data.begin() + 5010));
}

TEST(H5, AttributesOfEveryKind) {
  test::TempDir dir;
  const std::string path = dir / "attrs.h5";
  {
    h5::File file = h5::File::create(path);
    file.writeStringAttribute("name", "kdgrid-ä");
    file.writeStringAttribute("empty", "");
    file.writeIntAttribute("big", int64_t{1} << 40);
    file.writeIntAttribute("neg", -3);
    file.writeFloatAttribute("t", 0.25);
    {
      h5::Group g = file.createGroup("g");
      g.writeIntAttribute("n", 5);
      g.writeIntAttribute("n", 6);  // replaces
    }
    file.close();
  }
  h5::File file = h5::File::openRead(path);
  EXPECT_EQ(file.readStringAttribute("name"), "kdgrid-ä");
  EXPECT_EQ(file.readStringAttribute("empty"), "");
  EXPECT_EQ(file.readIntAttribute<int64_t>("big"), int64_t{1} << 40);
  EXPECT_EQ(file.readIntAttribute<int32_t>("neg"), -3);
  EXPECT_EQ(file.readFloatAttribute("t"), 0.25);
  EXPECT_EQ(file.readFloatAttribute("neg"), -3.0);
  EXPECT_EQ(file.readAttributeAsText("big"), "1099511627776");
  EXPECT_EQ(file.readAttributeAsText("t"), "0.25");
  EXPECT_EQ(file.attributeNames(), (std::vector<std::string>{"big", "empty", "name", "neg", "t"}));
  EXPECT_EQ(file.openGroup("g").readIntAttribute<uint8_t>("n"), 6);
  test::expectUsageError([&] { file.readIntAttribute<uint32_t>("big"); },
                         {path, "big", "out of range"});
  test::expectUsageError([&] { file.readIntAttribute<uint64_t>("neg"); },
                         {path, "neg", "out of range"});
  test::expectUsageError([&] { file.readIntAttribute<int64_t>("name"); },
                         {path, "name", "expected an integer"});
  test::expectUsageError([&] { file.readStringAttribute("big"); },
                         {path, "big", "expected a string"});
  test::expectUsageError([&] { file.readStringAttribute("nope"); },
                         {path, "missing attribute 'nope'"});
  test::expectUsageError([&] { file.openGroup("g").readStringAttribute("x"); },
                         {path, "group '/g'"});
}

TEST(H5, OpenReadRejectsMissingNonHdf5AndTruncatedFiles) {
  test::TempDir dir;
  test::expectUsageError([&] { h5::File::openRead(dir / "none.h5"); },
                         {dir / "none.h5", "no such file"});
  test::expectUsageError([&] { h5::File::openRead(dir.path()); }, {dir.path(), "directory"});
  std::ofstream(dir / "text.h5") << "just some text, not HDF5\n";
  test::expectUsageError([&] { h5::File::openRead(dir / "text.h5"); },
                         {dir / "text.h5", "not an HDF5 file"});

  const std::string good = dir / "good.h5";
  {
    h5::File file = h5::File::create(good);
    file.writeDataset("d", std::vector<uint32_t>(50000, 3), ElemType::kU32);
    file.close();
  }
  const auto size = std::filesystem::file_size(good);
  for (uintmax_t cut :
       {uintmax_t{0}, uintmax_t{8}, uintmax_t{100}, uintmax_t{1000}, size / 2, size - 1}) {
    const std::string cut_path = dir / fmt::format("cut_{}.h5", cut);
    std::filesystem::copy_file(good, cut_path);
    std::filesystem::resize_file(cut_path, cut);
    test::expectUsageError([&] { h5::File::openRead(cut_path).openDataset("d").read<uint32_t>(); },
                           {cut_path});
  }
}

TEST(H5, UnwrittenDatasetIsRejectedBeforeAllocating) {
  test::TempDir dir;
  const std::string path = dir / "hollow.h5";
  {
    h5::File file = h5::File::create(path);
    // Declares 2^40 bytes of data and writes none: a reader must not try to allocate them.
    file.createDataset("huge", {uint64_t{1} << 40}, ElemType::kU8);
    file.createDataset("small", {100}, ElemType::kU32);
    file.close();
  }
  EXPECT_LT(std::filesystem::file_size(path), 100000u);
  h5::File file = h5::File::openRead(path);
  test::expectUsageError([&] { file.openDataset("huge"); }, {path, "/huge", "file holds only"});
  test::expectUsageError([&] { file.openDataset("small"); }, {path, "/small", "never written"});
  test::expectUsageError([&] { file.openDataset("missing"); }, {path, "/missing", "missing"});
}

// Objects record no timestamps, so equal content gives byte-identical files.
TEST(H5, CreatedObjectsCarryNoTimestamps) {
  test::TempDir dir;
  const std::string path = dir / "times.h5";
  {
    h5::File file = h5::File::create(path);
    file.createGroup("g").writeDataset("d", std::vector<uint8_t>{1, 2, 3}, ElemType::kU8);
    file.close();
  }
  h5::File file = h5::File::openRead(path);
  std::lock_guard<std::recursive_mutex> lock(h5::hdf5Mutex());
  for (const char* name : {"/", "/g", "/g/d"}) {
    H5O_info_t info;
    ASSERT_GE(H5Oget_info_by_name(file.id(), name, &info, H5P_DEFAULT), 0) << name;
    EXPECT_EQ(info.mtime, 0) << name;
    EXPECT_EQ(info.ctime, 0) << name;
  }
}

// h5py (the reference reader) sees our float16, strings and integers as numpy would.
TEST(H5, H5pyReadsWhatWeWrite) {
  test::TempDir dir;
  const std::string path = dir / "py.h5";
  {
    h5::File file = h5::File::create(path);
    std::vector<f16> half = {f16(1.5f), f16(-0.0009765625f), f16(65504.f)};
    file.writeDataset("half", half, ElemType::kF16);
    file.writeStringAttribute("s", "hello");
    file.writeIntAttribute("i", -7);
    file.close();
  }
  std::ofstream(dir / "check.py") << R"(import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], 'r')
d = f['half']
assert d.dtype == np.float16, d.dtype
assert list(d[:]) == [1.5, -0.0009765625, 65504.0], d[:]
assert f.attrs['s'] == 'hello', f.attrs['s']
assert f.attrs['i'] == -7 and f.attrs['i'].dtype == np.int64
print('ok')
)";
  std::string out;
  EXPECT_EQ(test::runCommand("/usr/bin/python3 " + (dir / "check.py") + " " + path, &out), 0)
      << out;
}

// Readers and writers on two threads at once: without the library lock this corrupts HDF5's
// global state (crashes or failed calls).
TEST(H5, ConcurrentThreadsShareTheLibrary) {
  test::TempDir dir;
  const std::string shared = dir / "shared.h5";
  std::vector<uint32_t> data(20000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint32_t>(i * 7);
  {
    h5::File file = h5::File::create(shared);
    file.writeDataset("d", data, ElemType::kU32, {.chunk_bytes = 4096});
    file.close();
  }
  int read_errors = 0, write_errors = 0;
  std::thread reader([&] {
    for (int i = 0; i < 200; ++i) {
      h5::File file = h5::File::openRead(shared);
      if (file.openDataset("d").readRows<uint32_t>(i * 10, 100) !=
          std::vector<uint32_t>(data.begin() + i * 10, data.begin() + i * 10 + 100)) {
        ++read_errors;
      }
    }
  });
  std::thread writer([&] {
    for (int i = 0; i < 50; ++i) {
      const std::string path = dir / fmt::format("w{}.h5", i);
      h5::File file = h5::File::create(path);
      file.writeDataset("d", data, ElemType::kU32);
      file.writeIntAttribute("i", i);
      file.close();
      if (h5::File::openRead(path).readIntAttribute<int>("i") != i) ++write_errors;
    }
  });
  reader.join();
  writer.join();
  EXPECT_EQ(read_errors, 0);
  EXPECT_EQ(write_errors, 0);
}

}  // namespace
}  // namespace kdgrid
