// The kdgrid-teacher-topk shard format (DESIGN section 6): a teacher's k most likely next
// tokens at every position of one kdgrid-tokens shard, for offline distillation.
//
//   /topk/indices  uint32 [n_tokens, k]   global token ids, most likely first
//   /topk/logprobs float16|float32 [n_tokens, k]
//                  log-softmax(z_t / temperature) at those ids (over the FULL vocabulary)
//   attributes: format, format_version, k, temperature, teacher_checkpoint (the step directory
//   the logits came from), token_shard (the file name of the aligned token shard).
// Row i is the teacher's prediction made at token i of the token shard (i.e. for token i + 1).
// kdgrid also writes `vocab_size`, `tokenizer_sha256` (copied from the token shard) and
// `window` (the teacher's context length used); readers check them when present and accept
// shards without them (h5py-written shards).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace kdgrid {

struct TopkShardInfo {
  std::string path;
  uint64_t n_tokens = 0;
  uint32_t k = 0;
  double temperature = 0;
  std::string teacher_checkpoint;
  std::string token_shard;  // file name, no directory
  bool float16 = false;     // how /topk/logprobs is stored
  // Optional (0 / empty when absent).
  uint32_t vocab_size = 0;
  std::string tokenizer_sha256;
  uint32_t window = 0;
};

// Reads and validates the header: format and version, k >= 1, temperature > 0, both datasets
// present with shape [n_tokens, k], indices of an integer type, logprobs of a float type.
// UsageError naming the file, dataset or attribute otherwise.
TopkShardInfo readTopkShardInfo(const std::string& path);

// A top-k shard kept open for row reads (one reader per thread).
class TopkShardReader {
 public:
  // `vocab_size`: every id read must be below it.
  TopkShardReader(const TopkShardInfo& info, uint32_t vocab_size);
  ~TopkShardReader();
  TopkShardReader(TopkShardReader&&) noexcept;
  TopkShardReader& operator=(TopkShardReader&&) noexcept;

  const TopkShardInfo& info() const;
  // Rows [begin, begin + count) into ids and logprobs [count, k] (count <= n_tokens - begin,
  // checked). UsageError naming the dataset and row at an id >= vocab_size or a log-probability
  // that is not finite.
  void read(uint64_t begin, uint64_t count, uint32_t* ids, float* logprobs) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Writes one top-k shard in row blocks: into `path + ".tmp"`, renamed over `path` by
// finish() after an fsync, so a reader never sees a partial shard. Destroying an unfinished
// writer removes the temporary file.
class TopkShardWriter {
 public:
  // info.path is ignored (`path` is used); n_tokens, k, temperature, teacher_checkpoint,
  // token_shard and the optional attributes are written; float16 selects the logprobs type.
  TopkShardWriter(const std::string& path, const TopkShardInfo& info);
  ~TopkShardWriter();
  TopkShardWriter(const TopkShardWriter&) = delete;
  TopkShardWriter& operator=(const TopkShardWriter&) = delete;

  // Rows [begin, begin + count): ids and logprobs [count, k].
  void write(uint64_t begin, uint64_t count, const uint32_t* ids, const float* logprobs);
  void finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kdgrid
