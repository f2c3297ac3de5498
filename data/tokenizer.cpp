// Tokenizer core: vocabulary validation, encode (pre-tokenise, then BPE per piece), decode
// and the SHA-256 identity. Training is in bpe_trainer.cpp, files in tokenizer_io.cpp.
#include "data/tokenizer.h"

#include <openssl/evp.h>

#include <algorithm>
#include <queue>
#include <unordered_map>

#include "data/byte_unicode.h"
#include "data/pretokenizer.h"
#include "src/core/check.h"

namespace kdgrid {

namespace {

// Pieces up to this many bytes use the quadratic scan (cheaper than a heap for the few bytes
// of a typical word); longer ones (whitespace runs, long digit strings, binary data) the heap.
constexpr size_t kShortPiece = 48;

constexpr uint32_t kNoRank = UINT32_MAX;

}  // namespace

Tokenizer::Tokenizer(std::vector<std::string> tokens,
                     std::vector<std::pair<uint32_t, uint32_t>> merges, uint32_t eot,
                     const std::string& source)
    : pretokenizer_(std::make_shared<const Pretokenizer>()),
      tokens_(std::move(tokens)),
      merges_(std::move(merges)),
      eot_(eot) {
  auto fail = [&](const std::string& what) {
    throw UsageError(fmt::format("tokenizer '{}': {}", source, what));
  };
  const size_t n = tokens_.size();
  if (n < kMinVocabSize || n > kMaxVocabSize) {
    fail(fmt::format("vocabulary size {} is outside [{}, {}]", n, kMinVocabSize, kMaxVocabSize));
  }
  if (eot_ >= n)
    fail(fmt::format("end-of-text id {} is not below the vocabulary size {}", eot_, n));
  if (tokens_[eot_].empty()) fail("the end-of-text token has an empty spelling");

  std::unordered_map<std::string_view, uint32_t> id_of;  // bytes -> id, EOT excluded
  id_of.reserve(n);
  for (uint32_t id = 0; id < n; ++id) {
    if (id == eot_) continue;
    if (tokens_[id].empty()) fail(fmt::format("token {} is empty", id));
    auto [it, fresh] = id_of.emplace(tokens_[id], id);
    if (!fresh) fail(fmt::format("tokens {} and {} have the same bytes", it->second, id));
  }
  // vocab.json is keyed by spelling: the end-of-text spelling must not read as a regular token.
  if (auto bytes = gpt2ToBytes(tokens_[eot_]); bytes && id_of.contains(*bytes)) {
    fail(fmt::format("the end-of-text spelling \"{}\" is also token {}", tokens_[eot_],
                     id_of.at(*bytes)));
  }
  for (int b = 0; b < 256; ++b) {
    const char c = static_cast<char>(b);
    auto it = id_of.find(std::string_view(&c, 1));
    if (it == id_of.end())
      fail(fmt::format("no token for byte 0x{:02x} (byte alphabet incomplete)", b));
    byte_ids_[b] = it->second;
  }

  // Every merge joins two known tokens into a known token; every multi-byte token is made by
  // at least one merge (otherwise encode could never produce it).
  if (merges_.size() > UINT32_MAX) fail("too many merges");
  std::vector<bool> produced(n, false);
  merge_index_ = MergeTable(merges_.size());
  merge_results_.reserve(merges_.size());
  for (uint32_t rank = 0; rank < merges_.size(); ++rank) {
    const auto [left, right] = merges_[rank];
    if (left >= n || right >= n || left == eot_ || right == eot_) {
      fail(
          fmt::format("merge {} ({} {}) refers to an unknown or special token", rank, left, right));
    }
    auto it = id_of.find(tokens_[left] + tokens_[right]);
    if (it == id_of.end()) {
      fail(fmt::format("merge {} ({} {}) makes bytes that are not in the vocabulary", rank, left,
                       right));
    }
    if (!merge_index_.insert(left, right, {rank, it->second})) {
      fail(fmt::format("merge {} ({} {}) appears twice", rank, left, right));
    }
    merge_results_.push_back(it->second);
    produced[it->second] = true;
  }
  for (uint32_t id = 0; id < n; ++id) {
    if (id != eot_ && tokens_[id].size() > 1 && !produced[id]) {
      fail(fmt::format("token {} is made by no merge", id));
    }
  }
}

uint32_t Tokenizer::vocabSize() const {
  return static_cast<uint32_t>(tokens_.size());
}
uint32_t Tokenizer::eotToken() const {
  return eot_;
}

const std::string& Tokenizer::tokenBytes(uint32_t id) const {
  KDGRID_INPUT_CHECK(id < tokens_.size(), "token id {} is not below the vocabulary size {}", id,
                     tokens_.size());
  return tokens_[id];
}

std::vector<std::string_view> Tokenizer::pieces(std::string_view text) const {
  std::vector<std::string_view> out;
  pretokenizer_->forEachPiece(text, [&](std::string_view p) { out.push_back(p); });
  return out;
}

std::vector<uint32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<uint32_t> out;
  out.reserve(text.size() / 3 + 1);
  pretokenizer_->forEachPiece(text, [&](std::string_view p) { encodePiece(p, out); });
  return out;
}

void Tokenizer::encodePiece(std::string_view piece, std::vector<uint32_t>& out) const {
  // The piece's byte ids are appended and merged in place at the end of `out`.
  const size_t start = out.size();
  out.resize(start + piece.size());
  uint32_t* ids = out.data() + start;
  for (size_t i = 0; i < piece.size(); ++i)
    ids[i] = byte_ids_[static_cast<unsigned char>(piece[i])];
  const size_t n = piece.size() <= kShortPiece ? mergeShortPiece(ids, piece.size())
                                               : mergeLongPiece(ids, piece.size());
  out.resize(start + n);
}

// Both merge routines apply one merge at a time: the adjacent pair of lowest rank, the
// leftmost one on ties, until no adjacent pair has a rule (Hugging Face's GPT-2 order; for
// merges learned in order, as here and in GPT-2, the same result as GPT-2's encoder.py).

size_t Tokenizer::mergeShortPiece(uint32_t* ids, size_t n) const {
  // ranks[i]: rank of the pair (ids[i], ids[i+1]), kNoRank when no rule joins them.
  uint32_t ranks[kShortPiece];
  auto rankAt = [&](size_t i) {
    const MergeTable::Rule* rule = findMerge(ids[i], ids[i + 1]);
    return rule ? rule->rank : kNoRank;
  };
  for (size_t i = 0; i + 1 < n; ++i) ranks[i] = rankAt(i);
  while (n > 1) {
    size_t best = 0;
    for (size_t i = 1; i + 1 < n; ++i) {
      if (ranks[i] < ranks[best]) best = i;
    }
    if (ranks[best] == kNoRank) break;
    ids[best] = merge_results_[ranks[best]];
    std::copy(ids + best + 2, ids + n, ids + best + 1);
    std::copy(ranks + best + 1, ranks + n - 1, ranks + best);
    --n;
    if (best > 0) ranks[best - 1] = rankAt(best - 1);
    if (best + 1 < n) ranks[best] = rankAt(best);
  }
  return n;
}

size_t Tokenizer::mergeLongPiece(uint32_t* ids, size_t count) const {
  const auto n = static_cast<int32_t>(count);
  std::vector<int32_t> next(n), prev(n);
  std::vector<bool> alive(n, true);
  for (int32_t i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  // A candidate merge of the symbol at `pos` with its right neighbour. It is stale (skipped)
  // once either symbol has changed.
  struct Candidate {
    uint32_t rank;
    int32_t pos;
    uint32_t left, right;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto consider = [&](int32_t pos) {
    if (pos < 0 || next[pos] < 0) return;
    if (const MergeTable::Rule* rule = findMerge(ids[pos], ids[next[pos]])) {
      heap.push({rule->rank, pos, ids[pos], ids[next[pos]]});
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) consider(i);
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    const int32_t right = next[c.pos];
    if (!alive[c.pos] || right < 0 || ids[c.pos] != c.left || ids[right] != c.right) continue;
    ids[c.pos] = merge_results_[c.rank];
    alive[right] = false;
    next[c.pos] = next[right];
    if (next[right] >= 0) prev[next[right]] = c.pos;
    consider(prev[c.pos]);
    consider(c.pos);
  }
  size_t out = 0;
  for (int32_t i = 0; i >= 0 && i < n; i = next[i]) ids[out++] = ids[i];
  return out;
}

std::string Tokenizer::decode(std::span<const uint32_t> ids) const {
  std::string text;
  for (uint32_t id : ids) {
    KDGRID_INPUT_CHECK(id < tokens_.size(),
                       "cannot decode token id {}: not below the vocabulary size {}", id,
                       tokens_.size());
    if (id != eot_) text += tokens_[id];
  }
  return text;
}

std::string Tokenizer::sha256() const {
  const std::string text = canonicalJson();
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  KDGRID_CHECK(EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha256(), nullptr) == 1,
               "OpenSSL SHA-256 failed");
  std::string hex;
  for (unsigned i = 0; i < length; ++i) hex += fmt::format("{:02x}", digest[i]);
  return hex;
}

}  // namespace kdgrid
