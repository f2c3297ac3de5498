// The pieces of `kdgrid prepare` that are pure functions: document splitting, the validation
// rule, shard packing, and reading/merging inputs (text files and text-shard directories).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "data/documents.h"
#include "data/prepare_inputs.h"
#include "data/prepare_plan.h"
#include "src/core/check.h"
#include "tests/test_util.h"

namespace kdgrid {
namespace {

using Docs = std::vector<std::string_view>;

TEST(Prepare, SplitDocumentsAtBlankLines) {
  EXPECT_EQ(splitDocuments(""), Docs{});
  EXPECT_EQ(splitDocuments("\n\n\n"), Docs{});
  EXPECT_EQ(splitDocuments("one"), Docs{"one"});
  EXPECT_EQ(splitDocuments("one\n"), Docs{"one\n"});
  EXPECT_EQ(splitDocuments("a\nb\n\nc\n"), (Docs{"a\nb\n", "c\n"}));
  EXPECT_EQ(splitDocuments("\n\na\n\n\n\nb"), (Docs{"a\n", "b"}));
  // A line of spaces is text; only empty lines (or a lone CR) separate.
  EXPECT_EQ(splitDocuments("a\n  \nb\n\n \n"), (Docs{"a\n  \nb\n", " \n"}));
  EXPECT_EQ(splitDocuments("a\r\nb\r\n\r\nc\r\n"), (Docs{"a\r\nb\r\n", "c\r\n"}));
  EXPECT_EQ(splitDocuments("x\n\n\n"), Docs{"x\n"});
  const std::string binary("p\0q\n\n\xff\n", 7);
  EXPECT_EQ(splitDocuments(binary), (Docs{std::string_view("p\0q\n", 4), "\xff\n"}));
}

TEST(Prepare, ValidationPeriodAndRule) {
  EXPECT_EQ(validationPeriod(0.5), 2u);
  EXPECT_EQ(validationPeriod(0.3), 3u);  // round(3.33)
  EXPECT_EQ(validationPeriod(0.1), 10u);
  EXPECT_EQ(validationPeriod(0.01), 100u);
  EXPECT_EQ(validationPeriod(0.0), 0u);
  EXPECT_EQ(validationPeriod(-0.1), 0u);
  EXPECT_EQ(validationPeriod(0.51), 0u);
  EXPECT_EQ(validationPeriod(std::nan("")), 0u);
  EXPECT_GT(validationPeriod(1e-300), uint64_t{1} << 50);
  std::vector<uint64_t> val;
  for (uint64_t d = 0; d < 12; ++d) {
    if (isValidationDoc(d, 4)) val.push_back(d);
  }
  EXPECT_EQ(val, (std::vector<uint64_t>{3, 7, 11}));
}

TEST(Prepare, PackConsecutiveClosesAtTarget) {
  using V = std::vector<uint64_t>;
  EXPECT_EQ(packConsecutive(V{}, 10), V{0});
  EXPECT_EQ(packConsecutive(V{3, 3, 3, 3, 3}, 6), (V{0, 2, 4, 5}));
  EXPECT_EQ(packConsecutive(V{3, 3, 3, 3}, 6), (V{0, 2, 4}));
  EXPECT_EQ(packConsecutive(V{20, 1, 1, 30}, 10), (V{0, 1, 4}));  // never splits an item
  EXPECT_EQ(packConsecutive(V{5, 5}, 1), (V{0, 1, 2}));
  EXPECT_EQ(packConsecutive(V{1, 1, 1}, 100), (V{0, 3}));
}

TEST(Prepare, ReadsTextFilesAndShardDirectoriesInOrder) {
  test::TempDir dir;
  std::ofstream(dir / "a.txt") << "doc one\n\ndoc two\n";
  std::filesystem::create_directory(dir / "shards");
  TextShard s1;
  s1.bytes =
      "s1a"
      "s1b";
  s1.offsets = {0, 3, 3, 6};  // an empty document is kept as stored
  writeTextShard(dir / "shards/text_00001.h5", s1);
  TextShard s0;
  s0.bytes = "s0";
  s0.offsets = {0, 2};
  writeTextShard(dir / "shards/text_00000.h5", s0);
  std::ofstream(dir / "b.txt") << "last\n";

  PrepareInputs in = readPrepareInputs({dir / "a.txt", dir / "shards", dir / "b.txt"}, "--input");
  EXPECT_EQ(in.docs, (Docs{"doc one\n", "doc two\n", "s0", "s1a", "", "s1b", "last\n"}));
  EXPECT_EQ(in.num_text_files, 2u);
  EXPECT_EQ(in.num_text_shards, 2u);
  EXPECT_EQ(in.input_bytes, 17u + 2u + 6u + 5u);
  EXPECT_TRUE(in.provenance.empty());
}

TEST(Prepare, MergesProvenanceAndRejectsConflicts) {
  test::TempDir dir;
  auto shardWith = [&](const std::string& sub, const std::string& codes, const std::string& seed) {
    std::filesystem::create_directories(dir / sub);
    TextShard s;
    s.bytes = "xy";
    s.offsets = {0, 1, 2};
    s.provenance.source_doc = {4, 5};
    s.provenance.method = {1, 0};
    s.provenance.method_names = codes;
    s.provenance.params = {{"seed", seed}};
    writeTextShard(dir / (sub + "/text_00000.h5"), s);
    return dir / sub;
  };
  const std::string p1 = shardWith("p1", "0=backtranslate,1=perturb", "3");
  const std::string p2 = shardWith("p2", "1=perturb", "3");
  std::ofstream(dir / "plain.txt") << "plain\n";

  PrepareInputs in = readPrepareInputs({dir / "plain.txt", p1, p2}, "--input");
  EXPECT_EQ(in.provenance.source_doc, (std::vector<int64_t>{-1, 4, 5, 4, 5}));
  EXPECT_EQ(in.provenance.method, (std::vector<uint8_t>{kPlainTextMethod, 1, 0, 1, 0}));
  EXPECT_EQ(in.provenance.method_names, "0=backtranslate,1=perturb,255=none");
  EXPECT_EQ(in.provenance.params, (std::map<std::string, std::string>{{"seed", "3"}}));

  const std::string p3 = shardWith("p3", "1=fgsm", "3");
  try {
    readPrepareInputs({p1, p3}, "--input");
    FAIL() << "no error";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(p3), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--input"), std::string::npos) << e.what();
  }
  const std::string p4 = shardWith("p4", "1=perturb", "4");
  try {
    readPrepareInputs({p1, p4}, "--input");
    FAIL() << "no error";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("'seed'"), std::string::npos) << e.what();
  }
  try {
    readPrepareInputs({dir / "missing.txt"}, "--input");
    FAIL() << "no error";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("missing.txt"), std::string::npos) << e.what();
  }
  std::filesystem::create_directory(dir / "empty_dir");
  try {
    readPrepareInputs({dir / "empty_dir"}, "--input");
    FAIL() << "no error";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("empty_dir"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kdgrid
