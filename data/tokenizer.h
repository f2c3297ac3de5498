// Byte-level BPE tokenizer, GPT-2 style: text is pre-split with GPT-2's regular expression
// (PCRE2, Unicode classes), each piece is BPE-merged over its UTF-8 bytes. Encode/decode is
// an exact round trip for any byte string (invalid UTF-8 included).
//
// Ids: vocab_size counts the 256 byte tokens, the merges and one end-of-text token; every
// id < vocab_size. The token table uses GPT-2's byte-to-unicode mapping so it can be written
// as GPT-2 vocab.json + merges.txt, and real GPT-2 tokenizers (whose ids are ordered
// differently) can be imported: nothing assumes byte b has id b.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kdgrid {

class Tokenizer {
 public:
  // Trains on the concatenated contents of `files` until vocab_size ids exist.
  // `progress(merges_done, merges_total)` is called now and then (may be empty).
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

  // (implementation-defined members follow)
};

}  // namespace kdgrid
