#include "data/shards.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <functional>

#include "data/h5.h"
#include "src/core/check.h"

namespace kdgrid {
namespace {

namespace fs = std::filesystem;

// Root attributes that have a meaning of their own; every other root attribute is a
// provenance parameter (seed and the augmentation's settings).
bool isReservedRootAttribute(const std::string& name) {
  static constexpr std::array<const char*, 9> kReserved = {
      "format", "format_version", "vocab_size",         "eot_token",  "tokenizer_sha256",
      "k",      "temperature",    "teacher_checkpoint", "token_shard"};
  return std::any_of(kReserved.begin(), kReserved.end(), [&](const char* r) { return name == r; });
}

// Writes `path` through `path.tmp`: fill, close, fsync, rename. A reader never sees a partial
// shard; on failure the temporary file is removed.
void writeAtomically(const std::string& path, const std::function<void(h5::File&)>& fill) {
  const std::string tmp = path + ".tmp";
  try {
    h5::File file = h5::File::create(tmp);
    fill(file);
    file.close();
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
  const int fd = ::open(tmp.c_str(), O_RDONLY);
  const bool synced = fd >= 0 && ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  KDGRID_CHECK(synced, "HDF5 file '{}': cannot fsync it", tmp);
  std::error_code ec;
  fs::rename(tmp, path, ec);
  KDGRID_CHECK(!ec, "cannot rename '{}' to '{}': {}", tmp, path, ec.message());
}

void writeHeader(h5::File& file, const char* format) {
  file.writeStringAttribute("format", format);
  file.writeIntAttribute("format_version", kShardFormatVersion);
}

void checkHeader(const h5::File& file, const char* format) {
  const std::string found = file.readStringAttribute("format");
  if (found != format) {
    file.fail(fmt::format("attribute 'format' is '{}', expected '{}'", found, format));
  }
  const auto version = file.readIntAttribute<int64_t>("format_version");
  if (version != kShardFormatVersion) {
    file.fail(fmt::format("attribute 'format_version' is {}, this kdgrid reads version {}", version,
                          kShardFormatVersion));
  }
}

// Internal check for writers: offsets start at 0, never decrease and end at `length`.
void checkOffsetsForWrite(const std::string& path, const std::vector<uint64_t>& offsets,
                          uint64_t length) {
  KDGRID_CHECK(!offsets.empty() && offsets.front() == 0 && offsets.back() == length &&
                   std::is_sorted(offsets.begin(), offsets.end()),
               "writing shard '{}': offsets must start at 0, never decrease and end at {}", path,
               length);
}

// Reads and validates an offsets dataset: n_docs + 1 values, offsets[0] == 0, non-decreasing,
// the last equal to `length` (the element count of `data_name`).
std::vector<uint64_t> readOffsets(const h5::Group& root, const std::string& name, uint64_t length,
                                  const std::string& data_name) {
  h5::Dataset ds = root.openDataset(name);
  ds.expectRank(1);
  ds.expectInteger();
  if (ds.dims()[0] == 0) ds.fail("is empty, expected n_docs + 1 offsets (at least one)");
  std::vector<uint64_t> offsets = ds.read<uint64_t>();  // a negative value fails the conversion
  if (offsets[0] != 0) ds.fail(fmt::format("first offset is {}, expected 0", offsets[0]));
  for (size_t i = 1; i < offsets.size(); ++i) {
    if (offsets[i] < offsets[i - 1]) {
      ds.fail(
          fmt::format("offsets decrease at index {} ({} after {})", i, offsets[i], offsets[i - 1]));
    }
  }
  if (offsets.back() != length) {
    ds.fail(fmt::format("last offset is {}, but dataset '{}' holds {} elements", offsets.back(),
                        data_name, length));
  }
  return offsets;
}

void writeProvenance(h5::File& file, const Provenance& provenance, size_t num_docs) {
  if (!provenance.empty()) {
    KDGRID_CHECK(provenance.source_doc.size() == num_docs && provenance.method.size() == num_docs &&
                     (provenance.source_token_offset.empty() ||
                      provenance.source_token_offset.size() == num_docs),
                 "writing shard '{}': provenance columns must have one entry per document ({})",
                 file.path(), num_docs);
    h5::Group group = file.createGroup("provenance");
    group.writeDataset("source_doc", provenance.source_doc, h5::ElemType::kI64);
    h5::Dataset method = group.writeDataset("method", provenance.method, h5::ElemType::kU8);
    method.writeStringAttribute(kMethodCodesAttribute, provenance.method_names);
    if (!provenance.source_token_offset.empty() || provenance.token_offsets) {
      group.writeDataset("source_token_offset", provenance.source_token_offset, h5::ElemType::kI64);
    }
  }
  for (const auto& [name, value] : provenance.params) {
    KDGRID_CHECK(!isReservedRootAttribute(name),
                 "writing shard '{}': parameter name '{}' is reserved", file.path(), name);
    file.writeStringAttribute(name, value);
  }
}

// One provenance column: an integer dataset of n_docs entries.
template <typename T>
std::vector<T> readProvenanceColumn(const h5::Group& group, const std::string& name,
                                    uint64_t num_docs) {
  h5::Dataset ds = group.openDataset(name);
  ds.expectRank(1);
  ds.expectInteger();
  if (ds.dims()[0] != num_docs) {
    ds.fail(fmt::format("has {} entries, expected one per document ({})", ds.dims()[0], num_docs));
  }
  return ds.read<T>();
}

Provenance readProvenance(const h5::File& file, uint64_t num_docs) {
  Provenance provenance;
  for (const std::string& name : file.attributeNames()) {
    if (!isReservedRootAttribute(name)) provenance.params[name] = file.readAttributeAsText(name);
  }
  if (!file.contains("provenance")) return provenance;
  h5::Group group = file.openGroup("provenance");
  provenance.source_doc = readProvenanceColumn<int64_t>(group, "source_doc", num_docs);
  provenance.method = readProvenanceColumn<uint8_t>(group, "method", num_docs);
  h5::Dataset method = group.openDataset("method");
  if (method.hasAttribute(kMethodCodesAttribute)) {
    provenance.method_names = method.readStringAttribute(kMethodCodesAttribute);
  }
  if (group.contains("source_token_offset")) {
    provenance.source_token_offset =
        readProvenanceColumn<int64_t>(group, "source_token_offset", num_docs);
    provenance.token_offsets = true;
  }
  return provenance;
}

// The validated header of a token shard, with the dataset left open for reading.
struct TokenHeader {
  TokenShardInfo info;
  std::vector<uint64_t> doc_offsets;
};

TokenHeader readTokenHeader(const h5::File& file) {
  checkHeader(file, kTokensFormat);
  TokenHeader header;
  TokenShardInfo& info = header.info;
  info.path = file.path();
  info.vocab_size = file.readIntAttribute<uint32_t>("vocab_size");
  if (info.vocab_size == 0) file.fail("attribute 'vocab_size' is 0");
  info.eot_token = file.readIntAttribute<uint32_t>("eot_token");
  if (info.eot_token >= info.vocab_size) {
    file.fail(fmt::format("attribute 'eot_token' = {} is not below vocab_size = {}", info.eot_token,
                          info.vocab_size));
  }
  info.tokenizer_sha256 = file.readStringAttribute("tokenizer_sha256");
  h5::Dataset tokens = file.openDataset("tokens");
  tokens.expectRank(1);
  tokens.expectInteger();
  info.n_tokens = tokens.dims()[0];
  header.doc_offsets = readOffsets(file, "doc_offsets", info.n_tokens, "/tokens");
  info.n_docs = header.doc_offsets.size() - 1;
  return header;
}

// Fails naming the dataset at the first id >= vocab_size; `first` is the index of ids[0].
void checkTokenIds(const h5::File& file, const std::vector<uint32_t>& ids, uint64_t first,
                   uint32_t vocab_size) {
  auto bad = std::find_if(ids.begin(), ids.end(), [&](uint32_t id) { return id >= vocab_size; });
  if (bad != ids.end()) {
    file.openDataset("tokens").fail(
        fmt::format("token id {} at index {} is not below vocab_size = {}", *bad,
                    first + (bad - ids.begin()), vocab_size));
  }
}

}  // namespace

void writeTextShard(const std::string& path, const TextShard& shard) {
  checkOffsetsForWrite(path, shard.offsets, shard.bytes.size());
  writeAtomically(path, [&](h5::File& file) {
    writeHeader(file, kTextFormat);
    h5::Group text = file.createGroup("text");
    const auto* bytes = reinterpret_cast<const uint8_t*>(shard.bytes.data());
    text.writeDataset("bytes", std::span<const uint8_t>(bytes, shard.bytes.size()),
                      {shard.bytes.size()}, h5::ElemType::kU8);
    text.writeDataset("offsets", shard.offsets, h5::ElemType::kU64);
    writeProvenance(file, shard.provenance, shard.numDocs());
  });
}

void writeTokenShard(const std::string& path, const TokenShard& shard) {
  checkOffsetsForWrite(path, shard.doc_offsets, shard.tokens.size());
  KDGRID_CHECK(shard.vocab_size > 0 && shard.eot_token < shard.vocab_size,
               "writing shard '{}': eot_token {} must be below vocab_size {}", path,
               shard.eot_token, shard.vocab_size);
  KDGRID_CHECK(std::all_of(shard.tokens.begin(), shard.tokens.end(),
                           [&](uint32_t id) { return id < shard.vocab_size; }),
               "writing shard '{}': a token id is not below vocab_size {}", path, shard.vocab_size);
  writeAtomically(path, [&](h5::File& file) {
    writeHeader(file, kTokensFormat);
    file.writeIntAttribute("vocab_size", shard.vocab_size);
    file.writeIntAttribute("eot_token", shard.eot_token);
    file.writeStringAttribute("tokenizer_sha256", shard.tokenizer_sha256);
    // Ids < 65536 fit uint16 (vocab_size <= 65536): half the bytes of uint32.
    file.writeDataset("tokens", shard.tokens,
                      shard.vocab_size <= 65536 ? h5::ElemType::kU16 : h5::ElemType::kU32);
    file.writeDataset("doc_offsets", shard.doc_offsets, h5::ElemType::kU64);
    writeProvenance(file, shard.provenance, shard.doc_offsets.size() - 1);
  });
}

TextShard readTextShard(const std::string& path) {
  h5::File file = h5::File::openRead(path);
  checkHeader(file, kTextFormat);
  TextShard shard;
  {
    h5::Dataset bytes = file.openDataset("text/bytes");
    bytes.expectRank(1);
    shard.offsets = readOffsets(file, "text/offsets", bytes.dims()[0], "/text/bytes");
    shard.bytes = bytes.readBytes();
  }
  shard.provenance = readProvenance(file, shard.numDocs());
  return shard;
}

TokenShard readTokenShard(const std::string& path) {
  h5::File file = h5::File::openRead(path);
  TokenHeader header = readTokenHeader(file);
  TokenShard shard;
  shard.tokens = file.openDataset("tokens").read<uint32_t>();
  checkTokenIds(file, shard.tokens, 0, header.info.vocab_size);
  shard.doc_offsets = std::move(header.doc_offsets);
  shard.vocab_size = header.info.vocab_size;
  shard.eot_token = header.info.eot_token;
  shard.tokenizer_sha256 = std::move(header.info.tokenizer_sha256);
  shard.provenance = readProvenance(file, header.info.n_docs);
  return shard;
}

TokenShardInfo readTokenShardInfo(const std::string& path) {
  h5::File file = h5::File::openRead(path);
  return readTokenHeader(file).info;
}

struct TokenShardReader::Impl {
  explicit Impl(const TokenShardInfo& shard)
      : info(shard), file(h5::File::openRead(shard.path)), tokens(file.openDataset("tokens")) {
    tokens.expectRank(1);
    tokens.expectInteger();
    if (tokens.dims()[0] != info.n_tokens) {
      tokens.fail(fmt::format("holds {} tokens, but {} when the shard was opened (file replaced?)",
                              tokens.dims()[0], info.n_tokens));
    }
  }

  TokenShardInfo info;
  h5::File file;
  h5::Dataset tokens;  // declared after `file`: closed before it
};

TokenShardReader::TokenShardReader(const TokenShardInfo& info)
    : impl_(std::make_unique<Impl>(info)) {}
TokenShardReader::~TokenShardReader() = default;
TokenShardReader::TokenShardReader(TokenShardReader&&) noexcept = default;
TokenShardReader& TokenShardReader::operator=(TokenShardReader&&) noexcept = default;

const TokenShardInfo& TokenShardReader::info() const {
  return impl_->info;
}

std::vector<uint32_t> TokenShardReader::read(uint64_t begin, uint64_t count) const {
  std::vector<uint32_t> ids = impl_->tokens.readRows<uint32_t>(begin, count);
  auto bad = std::find_if(ids.begin(), ids.end(),
                          [&](uint32_t id) { return id >= impl_->info.vocab_size; });
  if (bad != ids.end()) {
    impl_->tokens.fail(fmt::format("token id {} at index {} is not below vocab_size = {}", *bad,
                                   begin + (bad - ids.begin()), impl_->info.vocab_size));
  }
  return ids;
}

std::vector<uint32_t> readTokenRange(const TokenShardInfo& info, uint64_t begin, uint64_t count) {
  return TokenShardReader(info).read(begin, count);
}

std::vector<std::string> listShards(const std::string& dir, const std::string& format) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw UsageError(fmt::format("shard directory '{}': {}", dir,
                                 fs::exists(dir, ec) ? "not a directory" : "no such directory"));
  }
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".h5" && entry.is_regular_file(ec)) {
      names.push_back(entry.path().filename().string());
    }
  }
  if (ec)
    throw UsageError(fmt::format("shard directory '{}': cannot list it: {}", dir, ec.message()));
  std::sort(names.begin(), names.end());
  std::vector<std::string> shards;
  for (const std::string& name : names) {
    const std::string path = (fs::path(dir) / name).string();
    h5::File file = h5::File::openRead(path);
    // Other HDF5 files (no `format` attribute) may share the directory.
    if (file.hasAttribute("format") && file.readStringAttribute("format") == format)
      shards.push_back(path);
  }
  if (shards.empty()) {
    throw UsageError(
        fmt::format("shard directory '{}' holds no '{}' shards (*.h5 files whose "
                    "attribute 'format' is '{}')",
                    dir, format, format));
  }
  return shards;
}

}  // namespace kdgrid
