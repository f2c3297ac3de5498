// HDF5 shard formats (DESIGN section 6): kdgrid-text, kdgrid-tokens, kdgrid-teacher-topk.
//
// Readers validate everything before allocating: a missing dataset, wrong `format` or
// `format_version`, offsets that disagree with the data, token ids >= vocab_size or a
// truncated file throw UsageError (exit 2) naming the file and the dataset. Readers accept
// fixed- or variable-length string attributes, any integer type for integer attributes and
// chunked or contiguous datasets (shards written by h5py load).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace kdgrid {

inline constexpr char kTextFormat[] = "kdgrid-text";
inline constexpr char kTokensFormat[] = "kdgrid-tokens";
inline constexpr char kTopkFormat[] = "kdgrid-teacher-topk";
inline constexpr int kShardFormatVersion = 1;
// String attribute of /provenance/method naming each code, e.g. "0=backtranslate,1=perturb".
inline constexpr char kMethodCodesAttribute[] = "codes";

// Where augmented documents came from (DESIGN section 6). Empty vectors and no method names =
// not augmented; an augmented shard with no documents has empty columns and method names.
struct Provenance {
  std::vector<int64_t> source_doc;           // [n_docs] index among all input documents
  std::vector<uint8_t> method;               // [n_docs] method code
  std::vector<int64_t> source_token_offset;  // [n_docs] FGSM only
  // The /provenance/method attribute `codes` naming each code, e.g. "0=backtranslate,1=perturb".
  std::string method_names;
  // Whether the shard has the source_token_offset column (FGSM), also when it has no documents
  // (the column is written when non-empty or when this is set; readers set it when present).
  bool token_offsets = false;
  // Seed and parameters, written as root string attributes. Readers return every root
  // attribute that is not part of the format (numbers as decimal text).
  std::map<std::string, std::string> params;
  bool empty() const { return source_doc.empty() && method_names.empty(); }
};

// A kdgrid-text shard held in memory: document d is bytes[offsets[d], offsets[d+1]).
struct TextShard {
  std::string bytes;              // UTF-8
  std::vector<uint64_t> offsets;  // [n_docs + 1], offsets[0] == 0, offsets.back() == bytes.size()
  Provenance provenance;
  size_t numDocs() const { return offsets.empty() ? 0 : offsets.size() - 1; }
};

// A kdgrid-tokens shard held in memory.
struct TokenShard {
  std::vector<uint32_t> tokens;       // [n_tokens]; stored as uint16 when vocab_size <= 65536
  std::vector<uint64_t> doc_offsets;  // [n_docs + 1]
  uint32_t vocab_size = 0;
  uint32_t eot_token = 0;
  std::string tokenizer_sha256;
  Provenance provenance;
};

// Header of a kdgrid-tokens shard: what the loader needs without reading the tokens.
struct TokenShardInfo {
  std::string path;
  uint64_t n_tokens = 0;
  uint64_t n_docs = 0;
  uint32_t vocab_size = 0;
  uint32_t eot_token = 0;
  std::string tokenizer_sha256;
};

// Writers write to `path + ".tmp"` and rename, so a reader never sees a partial shard.
void writeTextShard(const std::string& path, const TextShard& shard);
void writeTokenShard(const std::string& path, const TokenShard& shard);

TextShard readTextShard(const std::string& path);
TokenShard readTokenShard(const std::string& path);  // full validation incl. ids < vocab_size
TokenShardInfo readTokenShardInfo(const std::string& path);
// Tokens [begin, begin + count) of a shard (count <= n_tokens - begin, checked), ids checked
// < vocab_size. Opens the file for this one read; see TokenShardReader for many reads.
std::vector<uint32_t> readTokenRange(const TokenShardInfo& info, uint64_t begin, uint64_t count);

// A token shard kept open for repeated range reads (the data loader). Thread-compatible: use
// one reader per thread (HDF5 calls are serialised by the library lock anyway).
class TokenShardReader {
 public:
  // Opens `info.path` and checks /tokens still holds info.n_tokens ids.
  explicit TokenShardReader(const TokenShardInfo& info);
  ~TokenShardReader();
  TokenShardReader(TokenShardReader&&) noexcept;
  TokenShardReader& operator=(TokenShardReader&&) noexcept;

  const TokenShardInfo& info() const;
  // As readTokenRange.
  std::vector<uint32_t> read(uint64_t begin, uint64_t count) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Every `*.h5` in `dir` whose root `format` attribute equals `format`, in file-name order.
// Throws UsageError when `dir` does not exist or holds none.
std::vector<std::string> listShards(const std::string& dir, const std::string& format);

}  // namespace kdgrid
