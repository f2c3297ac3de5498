#include "data/topk_shards.h"

#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <optional>
#include <span>
#include <vector>

#include "data/h5.h"
#include "data/shards.h"
#include "src/core/check.h"
#include "src/core/dtype.h"

namespace kdgrid {
namespace {

namespace fs = std::filesystem;

constexpr char kIndices[] = "topk/indices";
constexpr char kLogprobs[] = "topk/logprobs";

// Both datasets of a top-k shard, checked: rank 2, equal shapes [n_tokens, k], integer ids and
// float log-probabilities.
struct TopkDatasets {
  h5::Dataset indices, logprobs;
};

TopkDatasets openDatasets(const h5::File& file, uint32_t k) {
  TopkDatasets d{file.openDataset(kIndices), file.openDataset(kLogprobs)};
  d.indices.expectRank(2);
  d.indices.expectInteger();
  d.logprobs.expectRank(2);
  if (!d.logprobs.type().isFloat())
    d.logprobs.fail(
        fmt::format("is {}, expected float16 or float32", d.logprobs.type().describe()));
  if (d.indices.dims()[1] != k)
    d.indices.fail(fmt::format("has {} columns, but attribute 'k' is {}", d.indices.dims()[1], k));
  if (d.logprobs.dims() != d.indices.dims())
    d.logprobs.fail(fmt::format("has shape [{}, {}], but /topk/indices has [{}, {}]",
                                d.logprobs.dims()[0], d.logprobs.dims()[1], d.indices.dims()[0],
                                d.indices.dims()[1]));
  return d;
}

TopkShardInfo readInfo(const h5::File& file) {
  const std::string format = file.readStringAttribute("format");
  if (format != kTopkFormat)
    file.fail(fmt::format("attribute 'format' is '{}', expected '{}'", format, kTopkFormat));
  const auto version = file.readIntAttribute<int64_t>("format_version");
  if (version != kShardFormatVersion)
    file.fail(fmt::format("attribute 'format_version' is {}, this kdgrid reads version {}", version,
                          kShardFormatVersion));
  TopkShardInfo info;
  info.path = file.path();
  info.k = file.readIntAttribute<uint32_t>("k");
  if (info.k == 0) file.fail("attribute 'k' is 0");
  info.temperature = file.readFloatAttribute("temperature");
  if (!(info.temperature > 0) || !std::isfinite(info.temperature))
    file.fail(
        fmt::format("attribute 'temperature' = {} is not a positive number", info.temperature));
  info.teacher_checkpoint = file.readStringAttribute("teacher_checkpoint");
  info.token_shard = file.readStringAttribute("token_shard");
  if (file.hasAttribute("vocab_size")) {
    info.vocab_size = file.readIntAttribute<uint32_t>("vocab_size");
    if (info.vocab_size == 0) file.fail("attribute 'vocab_size' is 0");
  }
  if (file.hasAttribute("tokenizer_sha256"))
    info.tokenizer_sha256 = file.readStringAttribute("tokenizer_sha256");
  if (file.hasAttribute("window")) info.window = file.readIntAttribute<uint32_t>("window");
  TopkDatasets d = openDatasets(file, info.k);
  info.n_tokens = d.indices.dims()[0];
  info.float16 = d.logprobs.type().size == 2;
  return info;
}

}  // namespace

TopkShardInfo readTopkShardInfo(const std::string& path) {
  h5::File file = h5::File::openRead(path);
  return readInfo(file);
}

struct TopkShardReader::Impl {
  Impl(const TopkShardInfo& shard, uint32_t vocab)
      : info(shard), vocab_size(vocab), file(h5::File::openRead(shard.path)) {
    TopkDatasets d = openDatasets(file, info.k);
    if (d.indices.dims()[0] != info.n_tokens)
      d.indices.fail(fmt::format("holds {} rows, but {} when the shard was opened (file replaced?)",
                                 d.indices.dims()[0], info.n_tokens));
    indices.emplace(std::move(d.indices));
    logprobs.emplace(std::move(d.logprobs));
  }

  TopkShardInfo info;
  uint32_t vocab_size;
  h5::File file;
  std::optional<h5::Dataset> indices, logprobs;  // declared after `file`: closed before it
};

TopkShardReader::TopkShardReader(const TopkShardInfo& info, uint32_t vocab_size)
    : impl_(std::make_unique<Impl>(info, vocab_size)) {}
TopkShardReader::~TopkShardReader() = default;
TopkShardReader::TopkShardReader(TopkShardReader&&) noexcept = default;
TopkShardReader& TopkShardReader::operator=(TopkShardReader&&) noexcept = default;

const TopkShardInfo& TopkShardReader::info() const {
  return impl_->info;
}

void TopkShardReader::read(uint64_t begin, uint64_t count, uint32_t* ids, float* logprobs) const {
  const uint64_t k = impl_->info.k;
  impl_->indices->readRows(h5::ElemType::kU32, begin, count, ids);
  impl_->logprobs->readRows(h5::ElemType::kF32, begin, count, logprobs);
  for (uint64_t i = 0; i < count * k; ++i) {
    if (ids[i] >= impl_->vocab_size)
      impl_->indices->fail(fmt::format("id {} in row {} is not below the vocabulary size {}",
                                       ids[i], begin + i / k, impl_->vocab_size));
    if (!std::isfinite(logprobs[i]))
      impl_->logprobs->fail(
          fmt::format("log-probability {} in row {} is not finite", logprobs[i], begin + i / k));
  }
}

struct TopkShardWriter::Impl {
  std::string path, tmp;
  TopkShardInfo info;
  std::optional<h5::File> file;
  std::optional<h5::Dataset> indices, logprobs;
  bool finished = false;
};

TopkShardWriter::TopkShardWriter(const std::string& path, const TopkShardInfo& info)
    : impl_(std::make_unique<Impl>()) {
  KDGRID_CHECK(info.k >= 1 && info.temperature > 0, "writing top-k shard '{}': k {} temperature {}",
               path, info.k, info.temperature);
  Impl& d = *impl_;
  d.path = path;
  d.tmp = path + ".tmp";
  d.info = info;
  d.file.emplace(h5::File::create(d.tmp));
  h5::File& f = *d.file;
  f.writeStringAttribute("format", kTopkFormat);
  f.writeIntAttribute("format_version", kShardFormatVersion);
  f.writeIntAttribute("k", info.k);
  f.writeFloatAttribute("temperature", info.temperature);
  f.writeStringAttribute("teacher_checkpoint", info.teacher_checkpoint);
  f.writeStringAttribute("token_shard", info.token_shard);
  if (info.vocab_size > 0) f.writeIntAttribute("vocab_size", info.vocab_size);
  if (!info.tokenizer_sha256.empty())
    f.writeStringAttribute("tokenizer_sha256", info.tokenizer_sha256);
  if (info.window > 0) f.writeIntAttribute("window", info.window);
  h5::Group group = f.createGroup("topk");
  const std::vector<uint64_t> dims = {info.n_tokens, info.k};
  d.indices.emplace(group.createDataset("indices", dims, h5::ElemType::kU32));
  d.logprobs.emplace(group.createDataset("logprobs", dims,
                                         info.float16 ? h5::ElemType::kF16 : h5::ElemType::kF32));
}

TopkShardWriter::~TopkShardWriter() {
  if (impl_->finished) return;
  impl_->indices.reset();
  impl_->logprobs.reset();
  impl_->file.reset();
  std::error_code ec;
  fs::remove(impl_->tmp, ec);
}

void TopkShardWriter::write(uint64_t begin, uint64_t count, const uint32_t* ids,
                            const float* logprobs) {
  Impl& d = *impl_;
  const size_t n = count * d.info.k;
  d.indices->writeRows(begin, std::span<const uint32_t>(ids, n));
  if (d.info.float16) {
    std::vector<f16> half(n);
    for (size_t i = 0; i < n; ++i) half[i] = f16(logprobs[i]);  // round to nearest even
    d.logprobs->writeRows(begin, std::span<const f16>(half));
  } else {
    d.logprobs->writeRows(begin, std::span<const float>(logprobs, n));
  }
}

void TopkShardWriter::finish() {
  Impl& d = *impl_;
  d.indices.reset();
  d.logprobs.reset();
  d.file->close();
  d.file.reset();
  const int fd = ::open(d.tmp.c_str(), O_RDONLY);
  const bool synced = fd >= 0 && ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  KDGRID_CHECK(synced, "HDF5 file '{}': cannot fsync it", d.tmp);
  std::error_code ec;
  fs::rename(d.tmp, d.path, ec);
  KDGRID_CHECK(!ec, "cannot rename '{}' to '{}': {}", d.tmp, d.path, ec.message());
  d.finished = true;
}

}  // namespace kdgrid
