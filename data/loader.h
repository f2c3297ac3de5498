// Training data loader (DESIGN sections 2 and 7).
//
// Each source directory of kdgrid-tokens shards is read as one token stream (shards in
// file-name order, documents as stored, each ending with the EOT token) cut into
// non-overlapping windows of seq_len = max_seq + 1 tokens (inputs = first max_seq, targets
// = the next token at each position); the incomplete tail is dropped.
//
// Epoch e: source i contributes round(E * w_i / sum(w)) samples, E = total windows of all
// sources (a source is repeated or subsampled through a permutation keyed by (seed, e, i));
// all samples are then shuffled with a permutation keyed by (seed, e). The sample stream is
// the concatenation of epochs; the cursor (epoch, position) is the next sample to hand out.
//
// Step s takes the next G = dp * micro_batch * grad_accum samples; data-parallel rank r gets
// samples [r * micro_batch * grad_accum, (r + 1) * micro_batch * grad_accum) of them, as
// grad_accum micro-batches of micro_batch sequences. So every grid sees the same global batch,
// and the cursor is global: a checkpoint saved on one grid resumes exactly on another.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kdgrid {

struct DataSource {
  std::string dir;
  double weight = 1.0;
};

// Parses "DIR[:WEIGHT],DIR[:WEIGHT],..." (the --data flag). Throws OptionError naming
// `flag` on an empty list, an empty directory name or a weight that is not a positive number.
std::vector<DataSource> parseDataSources(const std::string& spec, const std::string& flag = "--data");

struct DataCursor {
  uint64_t epoch = 0;
  uint64_t position = 0;  // index of the next sample within the epoch's shuffled order
  bool operator==(const DataCursor&) const = default;
};

struct LoaderConfig {
  std::vector<DataSource> sources;
  uint32_t seq_len = 0;     // tokens per sample = max_seq + 1
  uint64_t seed = 0;
  uint32_t micro_batch = 1; // sequences per micro-batch per data-parallel rank
  uint32_t grad_accum = 1;
  uint32_t dp = 1;          // data-parallel size and this rank's index
  uint32_t dp_rank = 0;
  bool prefetch = true;     // read the next step on a background thread
};

// Where a window was read: source index (order of LoaderConfig::sources) and the global
// offset of its first token in that source's token stream. Offline distillation reads the
// teacher's top-k rows of the same tokens with it.
struct WindowOrigin {
  uint32_t source = 0;
  uint64_t begin = 0;
};

// One optimizer step's data for this data-parallel rank.
struct StepBatch {
  // [grad_accum][micro_batch][seq_len] token ids, row-major.
  std::vector<uint32_t> tokens;
  std::vector<WindowOrigin> origins;  // [grad_accum * micro_batch], one per window of `tokens`
  DataCursor cursor_after;  // the global cursor once this step's global batch is consumed
};

class DataLoader {
 public:
  // Opens every source (throws UsageError naming the directory or shard on bad data; all
  // sources must share vocab_size and tokenizer_sha256) and positions at `start`.
  DataLoader(const LoaderConfig& config, DataCursor start);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  StepBatch next();

  uint32_t vocabSize() const;
  uint32_t eotToken() const;
  const std::string& tokenizerSha256() const;
  uint64_t samplesPerEpoch() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kdgrid
