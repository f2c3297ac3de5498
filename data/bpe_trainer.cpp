// Tokenizer::train: byte-level BPE training.
//
// 1. Pre-tokenise every file and count distinct pieces ("words"): piece bytes -> count.
// 2. Hold each word as a sequence of ids, the count of every adjacent pair over all words
//    (weighted by word count), and for each pair the words it occurs in.
// 3. Repeatedly take the most frequent pair from a max-heap (ties: lowest (left, right)),
//    rewrite only the words that contain it and update the counts of the pairs that changed.
//    Heap entries are not removed when a count changes; a fresh entry is pushed instead and
//    stale ones are skipped when popped.
#include <algorithm>
#include <optional>
#include <queue>
#include <unordered_map>

#include "data/file_util.h"
#include "data/pretokenizer.h"
#include "data/tokenizer.h"
#include "src/core/check.h"

namespace kdgrid {

namespace {

constexpr char kEndOfText[] = "<|endoftext|>";

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

inline uint64_t pairKey(uint32_t left, uint32_t right) {
  return (uint64_t{left} << 32) | right;
}
inline uint32_t pairLeft(uint64_t key) {
  return static_cast<uint32_t>(key >> 32);
}
inline uint32_t pairRight(uint64_t key) {
  return static_cast<uint32_t>(key);
}

struct HeapEntry {
  int64_t count;
  uint64_t pair;
  // priority_queue's top is the largest: highest count first, then the lowest pair.
  bool operator<(const HeapEntry& o) const {
    return count != o.count ? count < o.count : pair > o.pair;
  }
};

// The state of step 2/3 above.
class PairTable {
 public:
  PairTable(std::vector<std::vector<uint32_t>> words, std::vector<int64_t> counts)
      : words_(std::move(words)), counts_(std::move(counts)) {
    for (uint32_t w = 0; w < words_.size(); ++w) {
      const auto& s = words_[w];
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        const uint64_t key = pairKey(s[i], s[i + 1]);
        pair_counts_[key] += counts_[w];
        auto& where = where_[key];
        if (where.empty() || where.back() != w) where.push_back(w);
      }
    }
    for (const auto& [key, count] : pair_counts_) heap_.push({count, key});
  }

  // The most frequent pair, or nullopt when no adjacent pair is left anywhere.
  std::optional<uint64_t> best() {
    while (!heap_.empty()) {
      const HeapEntry top = heap_.top();
      auto it = pair_counts_.find(top.pair);
      if (it != pair_counts_.end() && it->second == top.count) return top.pair;
      heap_.pop();  // stale: the pair's count changed (a fresh entry exists) or it is gone
    }
    return std::nullopt;
  }

  // Replaces every occurrence of `pair` (left to right, non-overlapping) by `merged`.
  // Returns the number of words rewritten (> 0 for a pair with a positive count).
  size_t merge(uint64_t pair, uint32_t merged) {
    const uint32_t a = pairLeft(pair), b = pairRight(pair);
    std::vector<uint32_t> affected = std::move(where_[pair]);
    std::sort(affected.begin(), affected.end());
    affected.erase(std::unique(affected.begin(), affected.end()), affected.end());
    deltas_.clear();
    std::vector<uint32_t> rewritten;
    size_t words_rewritten = 0;
    for (uint32_t w : affected) {
      const auto& s = words_[w];
      rewritten.clear();
      for (size_t i = 0; i < s.size();) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          rewritten.push_back(merged);
          i += 2;
        } else {
          rewritten.push_back(s[i]);
          i += 1;
        }
      }
      if (rewritten.size() == s.size()) continue;  // stale entry: the word no longer has it
      ++words_rewritten;
      // The word's pairs before and after, with opposite signs; unchanged ones cancel below.
      const int64_t c = counts_[w];
      for (size_t i = 0; i + 1 < s.size(); ++i) deltas_.push_back({pairKey(s[i], s[i + 1]), -c});
      for (size_t i = 0; i + 1 < rewritten.size(); ++i) {
        const uint64_t key = pairKey(rewritten[i], rewritten[i + 1]);
        deltas_.push_back({key, c});
        if (rewritten[i] == merged || rewritten[i + 1] == merged) {
          auto& where = where_[key];
          if (where.empty() || where.back() != w) where.push_back(w);
        }
      }
      words_[w].swap(rewritten);
    }
    std::sort(deltas_.begin(), deltas_.end());
    for (size_t i = 0; i < deltas_.size();) {
      const uint64_t key = deltas_[i].first;
      int64_t delta = 0;
      for (; i < deltas_.size() && deltas_[i].first == key; ++i) delta += deltas_[i].second;
      if (delta == 0) continue;
      int64_t& count = pair_counts_[key];
      count += delta;
      KDGRID_CHECK(count >= 0, "BPE training: negative count for pair ({}, {})", pairLeft(key),
                   pairRight(key));
      if (count == 0) {
        pair_counts_.erase(key);
        where_.erase(key);
      } else {
        heap_.push({count, key});
      }
    }
    where_.erase(pair);
    return words_rewritten;
  }

 private:
  std::vector<std::vector<uint32_t>> words_;  // [n_words] current ids of each distinct piece
  std::vector<int64_t> counts_;               // [n_words] occurrences in the input
  std::unordered_map<uint64_t, int64_t> pair_counts_;          // pair -> weighted count (> 0)
  std::unordered_map<uint64_t, std::vector<uint32_t>> where_;  // pair -> words (may be stale)
  std::priority_queue<HeapEntry> heap_;
  std::vector<std::pair<uint64_t, int64_t>> deltas_;  // scratch for merge()
};

}  // namespace

Tokenizer Tokenizer::train(const std::vector<std::string>& files, uint32_t vocab_size,
                           const std::function<void(size_t, size_t)>& progress) {
  KDGRID_INPUT_CHECK(vocab_size >= kMinVocabSize && vocab_size <= kMaxVocabSize,
                     "--vocab-size {} is outside [{}, {}] (256 byte tokens + merges + one "
                     "end-of-text token)",
                     vocab_size, kMinVocabSize, kMaxVocabSize);
  const size_t wanted = vocab_size - kMinVocabSize;  // tokens to learn

  // 1. Distinct pieces and their counts. Single-byte pieces have no pairs and are skipped.
  Pretokenizer pretokenizer;
  std::unordered_map<std::string, int64_t, StringHash, std::equal_to<>> piece_counts;
  for (const auto& path : files) {
    const std::string text = readWholeFile(path, "input file");
    pretokenizer.forEachPiece(text, [&](std::string_view piece) {
      if (piece.size() < 2) return;
      auto it = piece_counts.find(piece);
      if (it == piece_counts.end()) {
        piece_counts.emplace(std::string(piece), 1);
      } else {
        ++it->second;
      }
    });
  }

  // Byte b is id b; learned tokens follow.
  std::vector<std::string> tokens;
  tokens.reserve(vocab_size);
  for (int b = 0; b < 256; ++b) tokens.emplace_back(1, static_cast<char>(b));
  std::unordered_map<std::string, uint32_t> id_of;  // bytes -> id, to reuse existing tokens
  for (uint32_t b = 0; b < 256; ++b) id_of.emplace(tokens[b], b);

  // 2. Words sorted by bytes, so that the whole run is independent of hash-map order.
  std::vector<std::pair<std::string_view, int64_t>> sorted(piece_counts.begin(),
                                                           piece_counts.end());
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::vector<uint32_t>> words;
  std::vector<int64_t> counts;
  words.reserve(sorted.size());
  counts.reserve(sorted.size());
  for (const auto& [piece, count] : sorted) {
    words.emplace_back(piece.begin(), piece.end());
    for (auto& id : words.back()) id = static_cast<unsigned char>(id);
    counts.push_back(count);
  }
  sorted.clear();
  piece_counts.clear();
  PairTable table(std::move(words), std::move(counts));

  // 3. Merges until the vocabulary is full.
  std::vector<std::pair<uint32_t, uint32_t>> merges;
  const size_t report_every = std::max<size_t>(1, wanted / 50);
  if (progress) progress(0, wanted);
  while (tokens.size() < vocab_size - 1) {
    const std::optional<uint64_t> best = table.best();
    KDGRID_INPUT_CHECK(best.has_value(),
                       "--vocab-size {} is more than the training data supports: every piece is a "
                       "single token after {} learned tokens (use --vocab-size {} or less, or more "
                       "text)",
                       vocab_size, tokens.size() - 256, tokens.size() + 1);
    const uint32_t left = pairLeft(*best), right = pairRight(*best);
    std::string bytes = tokens[left] + tokens[right];
    auto [it, fresh] = id_of.emplace(bytes, static_cast<uint32_t>(tokens.size()));
    if (fresh) tokens.push_back(std::move(bytes));
    merges.emplace_back(left, right);
    // A pair with a positive count occurs somewhere; if the bookkeeping ever disagreed, the
    // same pair would be picked forever.
    KDGRID_CHECK(table.merge(*best, it->second) > 0,
                 "BPE training: pair ({}, {}) has a count but occurs in no word", left, right);
    const size_t learned = tokens.size() - 256;
    if (progress && fresh && (learned % report_every == 0 || learned == wanted)) {
      progress(learned, wanted);
    }
  }
  tokens.emplace_back(kEndOfText);
  const auto eot = static_cast<uint32_t>(tokens.size() - 1);
  return Tokenizer(std::move(tokens), std::move(merges), eot, "training");
}

}  // namespace kdgrid
