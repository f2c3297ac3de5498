// Byte-level BPE tokenizer, GPT-2 style: text is pre-split with GPT-2's regular expression
// (PCRE2, Unicode classes), each piece is BPE-merged over its UTF-8 bytes. Encode/decode is
// an exact round trip for any byte string (invalid UTF-8 included).
//
// Ids: vocab_size counts the 256 byte tokens, the tokens made by merges and one end-of-text
// token; every id < vocab_size. The token table uses GPT-2's byte-to-unicode mapping so it can
// be written as GPT-2 vocab.json + merges.txt, and real GPT-2 tokenizers (whose ids are
// ordered differently) can be imported: nothing assumes byte b has id b.
//
// Encoding merges within a piece one pair at a time, the pair of lowest merge rank first
// (leftmost on ties), as Hugging Face's GPT-2 tokenizer does; for merge lists learned in order
// (ours, GPT-2's) that is the same as GPT-2's encoder.py. The end-of-text token is never
// produced from text: "<|endoftext|>" in the input is encoded as ordinary text.
//
// File (save/load), one vocab entry or merge per line:
//   {"format": "kdgrid-bpe", "version": 1, "vocab_size": N, "eot_token": id,
//    "pattern": GPT-2's pre-tokeniser pattern,
//    "vocab": [token in GPT-2 byte-to-unicode form, by id; the EOT token spelled literally],
//    "merges": ["left right", ... in rank order, as in GPT-2's merges.txt]}
// sha256() hashes the text save() writes (computed from the content, so a reformatted file
// keeps its identity).
//
// A Tokenizer is immutable once built: encode/decode may run on any number of threads at
// once. Copies share the compiled pre-tokeniser.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "data/merge_table.h"

namespace kdgrid {

class Pretokenizer;

// Limits of the vocabulary size: 256 byte tokens + end-of-text at least; at most 2^31 ids so
// that an id always fits an int32 as well.
inline constexpr uint32_t kMinVocabSize = 257;
inline constexpr uint32_t kMaxVocabSize = 1u << 31;

class Tokenizer {
 public:
  // Trains on the contents of `files` (each file pre-tokenised on its own) until vocab_size
  // ids exist: byte b has id b, merged tokens take 256.. in the order they are learned, the
  // end-of-text token `<|endoftext|>` is vocab_size - 1. Each step merges the most frequent
  // adjacent pair (ties: lowest (left id, right id)), so training is deterministic. A merge
  // whose bytes already form a token reuses that id (as Hugging Face's trainer does), so
  // numMerges() >= vocab_size - 257. Throws UsageError naming --vocab-size when vocab_size is
  // out of range or the data has too few distinct pairs to reach it, and naming the file
  // when one cannot be read.
  // `progress(tokens_learned, tokens_wanted)` is called now and then (may be empty).
  static Tokenizer train(const std::vector<std::string>& files, uint32_t vocab_size,
                         const std::function<void(size_t, size_t)>& progress = {});
  // Throws UsageError naming the file on a missing or corrupt file.
  static Tokenizer load(const std::string& path);
  void save(const std::string& path) const;  // JSON, written atomically (tmp + rename)

  std::vector<uint32_t> encode(std::string_view text) const;  // never emits the EOT token
  std::string decode(std::span<const uint32_t> ids) const;    // EOT decodes to ""

  uint32_t vocabSize() const;
  uint32_t eotToken() const;
  // SHA-256 (hex) of the canonical JSON text, recorded in token shards and checkpoints.
  std::string sha256() const;

  // GPT-2 interchange: vocab.json ({"token": id}) and merges.txt ("#version" line, then
  // "left right" per merge in rank order), both in GPT-2's byte-to-unicode form. The
  // end-of-text token is the one spelled `<|endoftext|>` (id 50256 in GPT-2). Import throws
  // UsageError naming the file on anything inconsistent.
  static Tokenizer fromGpt2Files(const std::string& vocab_json, const std::string& merges_txt);
  void writeGpt2Files(const std::string& dir) const;  // dir/vocab.json, dir/merges.txt

  // The pre-tokeniser's pieces of `text` (views into it); they tile `text` exactly.
  std::vector<std::string_view> pieces(std::string_view text) const;

  size_t numMerges() const { return merges_.size(); }
  // The bytes of token `id` (the end-of-text token: its literal spelling).
  const std::string& tokenBytes(uint32_t id) const;
  // The exact text save() writes; sha256() hashes it.
  std::string canonicalJson() const;

 private:
  // Validates and indexes; throws UsageError mentioning `source` (a file name, or "training")
  // on an inconsistent vocabulary.
  Tokenizer(std::vector<std::string> tokens, std::vector<std::pair<uint32_t, uint32_t>> merges,
            uint32_t eot, const std::string& source);

  // Appends the BPE ids of one pre-tokenised piece to `out`.
  void encodePiece(std::string_view piece, std::vector<uint32_t>& out) const;
  // Merge ids[0, n) in place; return the new length.
  size_t mergeShortPiece(uint32_t* ids, size_t n) const;  // O(n^2), for short pieces
  size_t mergeLongPiece(uint32_t* ids, size_t n) const;   // O(n log n) with a heap
  const MergeTable::Rule* findMerge(uint32_t left, uint32_t right) const {
    return merge_index_.find(left, right);
  }

  std::shared_ptr<const Pretokenizer> pretokenizer_;
  std::vector<std::string> tokens_;                    // [vocab_size] id -> bytes
  std::vector<std::pair<uint32_t, uint32_t>> merges_;  // [n_merges] rank -> (left id, right id)
  MergeTable merge_index_;                             // (left, right) -> rank, merged id
  std::vector<uint32_t> merge_results_;                // [n_merges] rank -> merged id
  std::array<uint32_t, 256> byte_ids_{};               // byte value -> id of its token
  uint32_t eot_ = 0;
};

}  // namespace kdgrid
