// Shard formats (DESIGN section 6): round trips, every kind of bad input exits 2 naming file
// and dataset, h5py-written shards load, listShards picks the right files in order.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "data/h5.h"
#include "data/shards.h"
#include "tests/test_util.h"

namespace kdgrid {
namespace {

using h5::ElemType;

TextShard sampleText() {
  TextShard shard;
  shard.bytes =
      std::string("first doc\nsecond line\n") + "zwei \xc3\xa4\n" + std::string("\0bin\xff", 5);
  shard.offsets = {0, 22, 30, 30, 35};  // the third document is empty
  return shard;
}

TokenShard sampleTokens(uint32_t vocab_size) {
  TokenShard shard;
  shard.vocab_size = vocab_size;
  shard.eot_token = vocab_size - 1;
  shard.tokenizer_sha256 = std::string(64, 'a');
  shard.tokens = {5, 17, vocab_size - 2, vocab_size - 1, 0, 3, vocab_size - 1};
  shard.doc_offsets = {0, 4, 7};
  return shard;
}

std::string storedType(const std::string& path, const std::string& dataset) {
  return h5::File::openRead(path).openDataset(dataset).type().describe();
}

TEST(Shards, TextRoundTripWithProvenance) {
  test::TempDir dir;
  TextShard shard = sampleText();
  shard.provenance.source_doc = {10, 11, 12, 40};
  shard.provenance.method = {0, 1, 1, 0};
  shard.provenance.method_names = "0=backtranslate,1=perturb";
  shard.provenance.params = {{"seed", "7"}, {"perturb_rate", "0.1"}};
  writeTextShard(dir / "t.h5", shard);
  EXPECT_FALSE(std::filesystem::exists(dir / "t.h5.tmp"));
  TextShard back = readTextShard(dir / "t.h5");
  EXPECT_EQ(back.bytes, shard.bytes);
  EXPECT_EQ(back.offsets, shard.offsets);
  EXPECT_EQ(back.numDocs(), 4u);
  EXPECT_EQ(back.provenance.source_doc, shard.provenance.source_doc);
  EXPECT_EQ(back.provenance.method, shard.provenance.method);
  EXPECT_EQ(back.provenance.method_names, shard.provenance.method_names);
  EXPECT_TRUE(back.provenance.source_token_offset.empty());
  EXPECT_EQ(back.provenance.params, shard.provenance.params);
  EXPECT_EQ(storedType(dir / "t.h5", "text/bytes"), "uint8");
  EXPECT_EQ(storedType(dir / "t.h5", "text/offsets"), "uint64");
  EXPECT_EQ(storedType(dir / "t.h5", "provenance/source_doc"), "int64");
  EXPECT_EQ(storedType(dir / "t.h5", "provenance/method"), "uint8");

  TextShard plain = sampleText();
  writeTextShard(dir / "plain.h5", plain);
  TextShard plain_back = readTextShard(dir / "plain.h5");
  EXPECT_EQ(plain_back.bytes, plain.bytes);
  EXPECT_TRUE(plain_back.provenance.empty());
  EXPECT_TRUE(plain_back.provenance.params.empty());
  EXPECT_FALSE(h5::File::openRead(dir / "plain.h5").contains("provenance"));
}

TEST(Shards, TokenRoundTripUint16AndUint32) {
  test::TempDir dir;
  for (uint32_t vocab : {300u, 65536u, 70000u}) {
    const std::string path = dir / fmt::format("tok{}.h5", vocab);
    TokenShard shard = sampleTokens(vocab);
    shard.provenance.source_doc = {3, 9};
    shard.provenance.method = {2, 2};
    shard.provenance.source_token_offset = {100, 5000};
    shard.provenance.method_names = "2=fgsm";
    shard.provenance.params = {{"seed", "1"}};
    writeTokenShard(path, shard);
    EXPECT_EQ(storedType(path, "tokens"), vocab <= 65536 ? "uint16" : "uint32") << vocab;
    EXPECT_EQ(storedType(path, "doc_offsets"), "uint64");
    TokenShard back = readTokenShard(path);
    EXPECT_EQ(back.tokens, shard.tokens);
    EXPECT_EQ(back.doc_offsets, shard.doc_offsets);
    EXPECT_EQ(back.vocab_size, vocab);
    EXPECT_EQ(back.eot_token, vocab - 1);
    EXPECT_EQ(back.tokenizer_sha256, shard.tokenizer_sha256);
    EXPECT_EQ(back.provenance.source_token_offset, shard.provenance.source_token_offset);
    EXPECT_EQ(back.provenance.params, shard.provenance.params);

    TokenShardInfo info = readTokenShardInfo(path);
    EXPECT_EQ(info.path, path);
    EXPECT_EQ(info.n_tokens, 7u);
    EXPECT_EQ(info.n_docs, 2u);
    EXPECT_EQ(info.vocab_size, vocab);
    EXPECT_EQ(readTokenRange(info, 2, 3),
              std::vector<uint32_t>(shard.tokens.begin() + 2, shard.tokens.begin() + 5));
    EXPECT_TRUE(readTokenRange(info, 7, 0).empty());
    TokenShardReader opened(info);
    TokenShardReader reader = std::move(opened);
    EXPECT_EQ(reader.info().n_tokens, 7u);
    for (uint64_t begin = 0; begin < 7; ++begin) {
      EXPECT_EQ(reader.read(begin, 7 - begin),
                std::vector<uint32_t>(shard.tokens.begin() + begin, shard.tokens.end()));
    }
    test::expectUsageError([&] { readTokenRange(info, 5, 3); }, {path, "/tokens", "rows [5, 8)"});
  }
}

// A token shard built by hand, so each test can break one thing.
struct RawTokenShard {
  std::string format = kTokensFormat;
  int64_t version = 1;
  int64_t vocab_size = 100;
  int64_t eot_token = 99;
  std::vector<uint32_t> tokens = {1, 2, 99, 3, 4, 99};
  std::vector<int64_t> offsets = {0, 3, 6};
  ElemType offsets_type = ElemType::kU64;
  bool with_tokens = true;
  bool with_offsets = true;
  bool with_sha = true;
};

void writeRaw(const std::string& path, const RawTokenShard& raw) {
  h5::File file = h5::File::create(path);
  file.writeStringAttribute("format", raw.format);
  file.writeIntAttribute("format_version", raw.version);
  file.writeIntAttribute("vocab_size", raw.vocab_size);
  file.writeIntAttribute("eot_token", raw.eot_token);
  if (raw.with_sha) file.writeStringAttribute("tokenizer_sha256", std::string(64, '0'));
  if (raw.with_tokens) file.writeDataset("tokens", raw.tokens, ElemType::kU32);
  if (raw.with_offsets) {
    std::vector<uint64_t> as_bits(raw.offsets.begin(), raw.offsets.end());
    if (raw.offsets_type == ElemType::kI64) {
      file.writeDataset("doc_offsets", raw.offsets, ElemType::kI64);
    } else {
      file.writeDataset("doc_offsets", as_bits, ElemType::kU64);
    }
  }
  file.close();
}

void expectBadTokenShard(const test::TempDir& dir, const std::string& name,
                         const RawTokenShard& raw, const std::vector<std::string>& parts) {
  SCOPED_TRACE(name);
  const std::string path = dir / (name + ".h5");
  writeRaw(path, raw);
  std::vector<std::string> with_path = parts;
  with_path.push_back(path);
  test::expectUsageError([&] { readTokenShard(path); }, with_path);
}

TEST(Shards, BadTokenShardsNameFileAndDataset) {
  test::TempDir dir;
  {
    RawTokenShard ok;
    writeRaw(dir / "ok.h5", ok);
    EXPECT_EQ(readTokenShard(dir / "ok.h5").tokens, ok.tokens);
  }
  RawTokenShard r;
  r.format = kTextFormat;
  expectBadTokenShard(dir, "wrong_format", r, {"'format'", "kdgrid-text", "kdgrid-tokens"});
  r = {};
  r.version = 2;
  expectBadTokenShard(dir, "wrong_version", r, {"'format_version'", "2"});
  r = {};
  r.with_offsets = false;
  expectBadTokenShard(dir, "no_offsets", r, {"dataset '/doc_offsets'", "missing"});
  r = {};
  r.with_tokens = false;
  expectBadTokenShard(dir, "no_tokens", r, {"dataset '/tokens'", "missing"});
  r = {};
  r.with_sha = false;
  expectBadTokenShard(dir, "no_sha", r, {"tokenizer_sha256"});
  r = {};
  r.offsets = {0, 3, 5};
  expectBadTokenShard(dir, "offsets_short", r,
                      {"dataset '/doc_offsets'", "last offset is 5", "/tokens", "6"});
  r = {};
  r.offsets = {0, 3, 7};
  expectBadTokenShard(dir, "offsets_long", r, {"dataset '/doc_offsets'", "last offset is 7"});
  r = {};
  r.offsets = {0, 4, 2, 6};
  expectBadTokenShard(dir, "offsets_decrease", r,
                      {"dataset '/doc_offsets'", "decrease at index 2"});
  r = {};
  r.offsets = {1, 3, 6};
  expectBadTokenShard(dir, "offsets_start", r, {"dataset '/doc_offsets'", "first offset is 1"});
  r = {};
  r.offsets = {0, -3, 6};
  r.offsets_type = ElemType::kI64;
  expectBadTokenShard(dir, "offsets_negative", r, {"dataset '/doc_offsets'"});
  r = {};
  r.offsets = {};
  expectBadTokenShard(dir, "offsets_empty", r, {"dataset '/doc_offsets'", "empty"});
  r = {};
  r.tokens[4] = 100;
  expectBadTokenShard(dir, "id_too_big", r,
                      {"dataset '/tokens'", "token id 100 at index 4", "vocab_size = 100"});
  r = {};
  r.eot_token = 100;
  expectBadTokenShard(dir, "eot_too_big", r, {"eot_token"});
  r = {};
  r.vocab_size = -1;
  expectBadTokenShard(dir, "vocab_negative", r, {"vocab_size", "out of range"});

  // The header-only reader and range reads validate too.
  r = {};
  r.offsets = {0, 3, 5};
  writeRaw(dir / "info_bad.h5", r);
  test::expectUsageError([&] { readTokenShardInfo(dir / "info_bad.h5"); },
                         {dir / "info_bad.h5", "/doc_offsets"});
  r = {};
  r.tokens[1] = 5000;
  writeRaw(dir / "range_bad.h5", r);
  TokenShardInfo info = readTokenShardInfo(dir / "range_bad.h5");
  EXPECT_EQ(readTokenRange(info, 2, 3), (std::vector<uint32_t>{99, 3, 4}));
  test::expectUsageError([&] { TokenShardReader(info).read(1, 1); },
                         {dir / "range_bad.h5", "/tokens", "token id 5000 at index 1"});
  info.n_tokens = 5;  // as if the file changed after the header was read
  test::expectUsageError([&] { TokenShardReader{info}; },
                         {dir / "range_bad.h5", "/tokens", "replaced"});
  info.n_tokens = 6;
  test::expectUsageError([&] { readTokenRange(info, 0, 3); },
                         {dir / "range_bad.h5", "/tokens", "5000"});
}

TEST(Shards, BadTextShardsNameFileAndDataset) {
  test::TempDir dir;
  writeTextShard(dir / "good.h5", sampleText());
  {
    // Break one thing at a time in copies of a good shard.
    auto broken = [&](const std::string& name, auto&& edit) {
      const std::string path = dir / (name + ".h5");
      std::filesystem::copy_file(dir / "good.h5", path);
      h5::File file = h5::File::openReadWrite(path);
      edit(file);
      file.close();
      return path;
    };
    std::string p = broken("no_bytes", [](h5::File& f) { f.removeLink("text/bytes"); });
    test::expectUsageError([&] { readTextShard(p); }, {p, "dataset '/text/bytes'", "missing"});
    p = broken("no_offsets", [](h5::File& f) { f.removeLink("text/offsets"); });
    test::expectUsageError([&] { readTextShard(p); }, {p, "dataset '/text/offsets'", "missing"});
    p = broken("decreasing", [](h5::File& f) {
      f.removeLink("text/offsets");
      f.writeDataset("text/offsets", std::vector<uint64_t>{0, 22, 20, 30, 35}, ElemType::kU64);
    });
    test::expectUsageError([&] { readTextShard(p); },
                           {p, "dataset '/text/offsets'", "decrease at index 2"});
    p = broken("short", [](h5::File& f) {
      f.removeLink("text/offsets");
      f.writeDataset("text/offsets", std::vector<uint64_t>{0, 22, 34}, ElemType::kU64);
    });
    test::expectUsageError([&] { readTextShard(p); },
                           {p, "dataset '/text/offsets'", "/text/bytes", "35"});
    p = broken("bytes_2d", [](h5::File& f) {
      f.removeLink("text/bytes");
      std::vector<uint8_t> b(35, 'x');
      f.writeDataset("text/bytes", std::span<const uint8_t>(b), {5, 7}, ElemType::kU8);
    });
    test::expectUsageError([&] { readTextShard(p); }, {p, "dataset '/text/bytes'", "[5, 7]"});
    p = broken("bytes_u16", [](h5::File& f) {
      f.removeLink("text/bytes");
      f.writeDataset("text/bytes", std::vector<uint16_t>(35, 'x'), ElemType::kU16);
    });
    test::expectUsageError([&] { readTextShard(p); }, {p, "dataset '/text/bytes'", "uint16"});
    p = broken("version", [](h5::File& f) { f.writeIntAttribute("format_version", 0); });
    test::expectUsageError([&] { readTextShard(p); }, {p, "'format_version'"});
    p = broken("prov_short", [](h5::File& f) {
      h5::Group g = f.createGroup("provenance");
      g.writeDataset("source_doc", std::vector<int64_t>{1, 2, 3}, ElemType::kI64);
      g.writeDataset("method", std::vector<uint8_t>{0, 0, 0, 0}, ElemType::kU8);
    });
    test::expectUsageError([&] { readTextShard(p); },
                           {p, "dataset '/provenance/source_doc'", "3 entries"});
  }
  // A token shard is not a text shard, and vice versa.
  writeTokenShard(dir / "tokens.h5", sampleTokens(300));
  test::expectUsageError([&] { readTextShard(dir / "tokens.h5"); },
                         {dir / "tokens.h5", "'format'"});
  test::expectUsageError([&] { readTokenShard(dir / "good.h5"); }, {dir / "good.h5", "'format'"});
}

TEST(Shards, MissingNonHdf5AndTruncatedFiles) {
  test::TempDir dir;
  test::expectUsageError([&] { readTokenShard(dir / "absent.h5"); },
                         {dir / "absent.h5", "no such file"});
  std::ofstream(dir / "junk.h5") << "not an hdf5 file at all";
  test::expectUsageError([&] { readTextShard(dir / "junk.h5"); },
                         {dir / "junk.h5", "not an HDF5 file"});
  TokenShard big = sampleTokens(300);
  big.tokens.assign(100000, 7);
  big.doc_offsets = {0, 50000, 100000};
  writeTokenShard(dir / "big.h5", big);
  const auto size = std::filesystem::file_size(dir / "big.h5");
  for (uintmax_t cut : {uintmax_t{0}, uintmax_t{7}, uintmax_t{96}, uintmax_t{800}, uintmax_t{4096},
                        size / 3, size - 100, size - 1}) {
    SCOPED_TRACE(cut);
    const std::string path = dir / fmt::format("cut{}.h5", cut);
    std::filesystem::copy_file(dir / "big.h5", path);
    std::filesystem::resize_file(path, cut);
    test::expectUsageError([&] { readTokenShard(path); }, {path});
    test::expectUsageError([&] { readTokenShardInfo(path); }, {path});
  }
}

// Shards written by h5py (contiguous datasets, variable- and fixed-length string attributes,
// numpy integer attributes of several types, int64 offsets from cumsum) load.
TEST(Shards, H5pyWrittenShardsLoad) {
  test::TempDir dir;
  std::ofstream(dir / "write.py") << R"(import sys, h5py, numpy as np
d = sys.argv[1]
docs = [b'hello world\n', b'second \xc3\xa4 doc\n', b'third']
with h5py.File(d + '/text.h5', 'w') as f:
    f.attrs['format'] = 'kdgrid-text'
    f.attrs['format_version'] = 1
    f['text/bytes'] = np.frombuffer(b''.join(docs), dtype=np.uint8)
    f['text/offsets'] = np.concatenate([[0], np.cumsum([len(x) for x in docs])])
    f['provenance/source_doc'] = np.array([4, 5, 6], dtype=np.int64)
    f['provenance/method'] = np.array([0, 1, 0], dtype=np.uint8)
    f['provenance/method'].attrs['codes'] = '0=backtranslate,1=perturb'
    f.attrs['seed'] = np.int64(42)
    f.attrs['rate'] = 0.5
    f.attrs['lang'] = np.bytes_('spa')
with h5py.File(d + '/tokens.h5', 'w') as f:
    f.attrs['format'] = np.bytes_('kdgrid-tokens')
    f.attrs['format_version'] = np.uint8(1)
    f.attrs['vocab_size'] = np.int64(300)
    f.attrs['eot_token'] = np.uint16(299)
    f.attrs.create('tokenizer_sha256', 'ab' * 32, dtype=h5py.string_dtype('ascii', 64))
    f['tokens'] = np.array([1, 2, 299, 250, 299], dtype=np.uint16)
    f['doc_offsets'] = np.array([0, 3, 5], dtype=np.uint64)
with h5py.File(d + '/tokens32.h5', 'w') as f:
    f.attrs['format'] = 'kdgrid-tokens'
    f.attrs['format_version'] = np.int32(1)
    f.attrs['vocab_size'] = np.uint32(70000)
    f.attrs['eot_token'] = 69999
    f.attrs['tokenizer_sha256'] = 'cd' * 32
    f.create_dataset('tokens', data=np.array([69999, 1, 65536, 69999], dtype=np.int32), chunks=(2,))
    f['doc_offsets'] = np.cumsum([0, 1, 3])
)";
  std::string out;
  ASSERT_EQ(test::runCommand("/usr/bin/python3 " + (dir / "write.py") + " " + dir.path(), &out), 0)
      << out;

  TextShard text = readTextShard(dir / "text.h5");
  EXPECT_EQ(text.bytes, "hello world\nsecond \xc3\xa4 doc\nthird");
  EXPECT_EQ(text.offsets, (std::vector<uint64_t>{0, 12, 26, 31}));
  EXPECT_EQ(text.provenance.source_doc, (std::vector<int64_t>{4, 5, 6}));
  EXPECT_EQ(text.provenance.method, (std::vector<uint8_t>{0, 1, 0}));
  EXPECT_EQ(text.provenance.method_names, "0=backtranslate,1=perturb");
  EXPECT_EQ(text.provenance.params,
            (std::map<std::string, std::string>{{"lang", "spa"}, {"rate", "0.5"}, {"seed", "42"}}));

  TokenShard tokens = readTokenShard(dir / "tokens.h5");
  EXPECT_EQ(tokens.tokens, (std::vector<uint32_t>{1, 2, 299, 250, 299}));
  EXPECT_EQ(tokens.doc_offsets, (std::vector<uint64_t>{0, 3, 5}));
  EXPECT_EQ(tokens.vocab_size, 300u);
  EXPECT_EQ(tokens.eot_token, 299u);
  std::string ab;
  for (int i = 0; i < 32; ++i) ab += "ab";
  EXPECT_EQ(tokens.tokenizer_sha256, ab);

  TokenShard wide = readTokenShard(dir / "tokens32.h5");
  EXPECT_EQ(wide.tokens, (std::vector<uint32_t>{69999, 1, 65536, 69999}));
  EXPECT_EQ(wide.vocab_size, 70000u);
  EXPECT_EQ(wide.tokenizer_sha256.size(), 64u);
  EXPECT_EQ(readTokenRange(readTokenShardInfo(dir / "tokens32.h5"), 1, 2),
            (std::vector<uint32_t>{1, 65536}));
}

// What we write, h5py reads with the contract's names, dtypes and attributes.
TEST(Shards, H5pyReadsOurShards) {
  test::TempDir dir;
  writeTokenShard(dir / "t16.h5", sampleTokens(300));
  writeTokenShard(dir / "t32.h5", sampleTokens(70000));
  writeTextShard(dir / "x.h5", sampleText());
  std::ofstream(dir / "read.py") << R"(import sys, h5py, numpy as np
d = sys.argv[1]
for name, vocab, dt in [('t16', 300, np.uint16), ('t32', 70000, np.uint32)]:
    with h5py.File(d + '/' + name + '.h5', 'r') as f:
        assert f.attrs['format'] == 'kdgrid-tokens', f.attrs['format']
        assert f.attrs['format_version'] == 1
        assert f.attrs['vocab_size'] == vocab and f.attrs['eot_token'] == vocab - 1
        assert f.attrs['tokenizer_sha256'] == 'a' * 64
        assert f['tokens'].dtype == dt, f['tokens'].dtype
        assert f['tokens'].chunks is not None
        assert list(f['tokens'][:]) == [5, 17, vocab - 2, vocab - 1, 0, 3, vocab - 1]
        assert f['doc_offsets'].dtype == np.uint64 and list(f['doc_offsets'][:]) == [0, 4, 7]
with h5py.File(d + '/x.h5', 'r') as f:
    assert f.attrs['format'] == 'kdgrid-text'
    assert f['text/bytes'].dtype == np.uint8 and f['text/bytes'].shape == (35,)
    assert list(f['text/offsets'][:]) == [0, 22, 30, 30, 35]
print('ok')
)";
  std::string out;
  EXPECT_EQ(test::runCommand("/usr/bin/python3 " + (dir / "read.py") + " " + dir.path(), &out), 0)
      << out;
}

TEST(Shards, ListShardsFiltersByFormatInNameOrder) {
  test::TempDir dir;
  std::filesystem::create_directory(dir / "d");
  writeTokenShard(dir / "d/tokens_00010.h5", sampleTokens(300));
  writeTokenShard(dir / "d/tokens_00002.h5", sampleTokens(300));
  writeTokenShard(dir / "d/a_first.h5", sampleTokens(300));
  writeTextShard(dir / "d/text_00000.h5", sampleText());
  {
    h5::File other = h5::File::create(dir / "d/other.h5");  // no `format`: not a shard
    other.close();
  }
  std::ofstream(dir / "d/notes.txt") << "not a shard";
  writeTokenShard(dir / "d/tokens_00001.h5.tmp", sampleTokens(300));  // only *.h5 counts
  EXPECT_EQ(listShards(dir / "d", kTokensFormat),
            (std::vector<std::string>{dir / "d/a_first.h5", dir / "d/tokens_00002.h5",
                                      dir / "d/tokens_00010.h5"}));
  EXPECT_EQ(listShards(dir / "d", kTextFormat),
            (std::vector<std::string>{dir / "d/text_00000.h5"}));
  test::expectUsageError([&] { listShards(dir / "d", kTopkFormat); }, {dir / "d", kTopkFormat});
  test::expectUsageError([&] { listShards(dir / "nowhere", kTextFormat); },
                         {dir / "nowhere", "no such directory"});
  test::expectUsageError([&] { listShards(dir / "d/notes.txt", kTextFormat); },
                         {"notes.txt", "not a directory"});
  std::ofstream(dir / "d/broken.h5") << "garbage";
  test::expectUsageError([&] { listShards(dir / "d", kTextFormat); }, {dir / "d/broken.h5"});
}

}  // namespace
}  // namespace kdgrid
