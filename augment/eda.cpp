#include "augment/eda.h"

#include <algorithm>
#include <cmath>

#include "augment/stop_words.h"

namespace kdgrid::augment {
namespace {

bool isAsciiUpper(char c) {
  return c >= 'A' && c <= 'Z';
}
bool isAsciiLower(char c) {
  return c >= 'a' && c <= 'z';
}
bool isAsciiAlnum(char c) {
  return isAsciiUpper(c) || isAsciiLower(c) || (c >= '0' && c <= '9');
}

// The code point at s[i] and its length in bytes; -1 (length 1) for an invalid sequence.
std::pair<int32_t, size_t> decodeUtf8(std::string_view s, size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  size_t length = b0 < 0x80 ? 1 : b0 >= 0xF0 && b0 < 0xF5 ? 4 : b0 >= 0xE0 ? 3 : b0 >= 0xC2 ? 2 : 0;
  if (length == 0 || i + length > s.size()) return {-1, 1};
  if (length == 1) return {b0, 1};
  int32_t cp = b0 & (0x7F >> length);
  for (size_t k = 1; k < length; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return {-1, 1};
    cp = (cp << 6) | (b & 0x3F);
  }
  return {cp, length};
}

// Letters of other scripts count as word characters; Latin-1 punctuation and symbols, general
// punctuation, symbols and arrows, CJK punctuation, full-width punctuation, specials (U+FFFD),
// private use and emoji do not.
bool isWordCodePoint(int32_t cp) {
  if (cp < 0x80) return cp >= 0 && isAsciiAlnum(static_cast<char>(cp));
  if (cp < 0xC0 || cp == 0xD7 || cp == 0xF7) return false;
  if (cp >= 0x2000 && cp <= 0x2BFF) return false;
  if (cp >= 0x3000 && cp <= 0x303F) return false;
  if (cp >= 0xE000 && cp <= 0xF8FF) return false;
  if (cp >= 0xFE10 && cp <= 0xFE6F) return false;
  if (cp >= 0xFF00 && cp <= 0xFF0F) return false;
  if (cp >= 0xFFF0 && cp <= 0xFFFF) return false;
  return cp < 0x1F000;
}

// A joiner inside a word: ASCII apostrophe, RIGHT SINGLE QUOTATION MARK, hyphen.
size_t joinerLength(std::string_view s, size_t i) {
  if (s[i] == '\'' || s[i] == '-') return 1;
  if (s.substr(i, 3) == "\xE2\x80\x99") return 3;
  return 0;
}

bool isBlankOnly(std::string_view gap) {
  return std::all_of(gap.begin(), gap.end(), [](char c) { return c == ' ' || c == '\t'; });
}

}  // namespace

EdaCounts& EdaCounts::operator+=(const EdaCounts& o) {
  sentences += o.sentences;
  words += o.words;
  replaced += o.replaced;
  inserted += o.inserted;
  swapped += o.swapped;
  deleted += o.deleted;
  return *this;
}

uint64_t operationCount(double rate, size_t words, KeyedRng& rng) {
  const double expected = rate * static_cast<double>(words);
  const double whole = std::floor(expected);
  return static_cast<uint64_t>(whole) + (rng.uniform() < expected - whole ? 1 : 0);
}

SentencePerturber::SentencePerturber(const WordNet& wordnet, const EdaRates& rates)
    : wordnet_(wordnet), rates_(rates) {}

void SentencePerturber::tokenize(std::string_view s) {
  words_.clear();
  gaps_.clear();
  size_t gap_begin = 0, i = 0;
  while (i < s.size()) {
    auto [cp, length] = decodeUtf8(s, i);
    if (!isWordCodePoint(cp)) {
      i += length;
      continue;
    }
    const size_t begin = i;
    for (;;) {
      i += length;
      if (i >= s.size()) break;
      std::tie(cp, length) = decodeUtf8(s, i);
      if (isWordCodePoint(cp)) continue;
      const size_t joiner = joinerLength(s, i);
      if (joiner == 0 || i + joiner >= s.size()) break;
      const auto [next, next_length] = decodeUtf8(s, i + joiner);
      if (!isWordCodePoint(next)) break;
      i += joiner;
      cp = next;
      length = next_length;
    }
    gaps_.push_back(s.substr(gap_begin, begin - gap_begin));
    words_.push_back(s.substr(begin, i - begin));
    gap_begin = i;
  }
  gaps_.push_back(s.substr(gap_begin));
}

size_t SentencePerturber::drawCandidate(size_t drawn, KeyedRng& rng) {
  const size_t j = drawn + rng.below(candidates_.size() - drawn);
  std::swap(candidates_[drawn], candidates_[j]);
  return candidates_[drawn];
}

std::string_view SentencePerturber::store(std::string text) {
  arena_.push_back(std::move(text));
  return arena_.back();
}

std::string_view SentencePerturber::pickSynonym(size_t i, bool match_case, KeyedRng& rng) {
  const std::string_view word = words_[i];
  lower_.assign(word);
  for (char& c : lower_) {
    if (isAsciiUpper(c)) c = static_cast<char>(c + ('a' - 'A'));
  }
  if (isStopWord(lower_)) return {};
  synonyms_.clear();
  wordnet_.synonyms(word, synonyms_);
  if (synonyms_.empty()) return {};
  const std::string_view synonym = synonyms_[rng.below(synonyms_.size())];
  if (!match_case) return synonym;
  // The word's case pattern: UPPER (two or more letters, all upper case) or Capitalised.
  size_t letters = 0, upper = 0;
  for (char c : word) {
    letters += isAsciiUpper(c) || isAsciiLower(c);
    upper += isAsciiUpper(c);
  }
  if (letters >= 2 && upper == letters) {
    std::string text(synonym);
    for (char& c : text) {
      if (isAsciiLower(c)) c = static_cast<char>(c - ('a' - 'A'));
    }
    return store(std::move(text));
  }
  if (isAsciiUpper(word.front()) && isAsciiLower(synonym.front())) {
    std::string text(synonym);
    text.front() = static_cast<char>(text.front() - ('a' - 'A'));
    return store(std::move(text));
  }
  return synonym;
}

void SentencePerturber::replaceWords(uint64_t n, KeyedRng& rng, EdaCounts& counts) {
  candidates_.resize(words_.size());
  for (size_t i = 0; i < candidates_.size(); ++i) candidates_[i] = i;
  uint64_t done = 0;
  for (size_t drawn = 0; drawn < candidates_.size() && done < n; ++drawn) {
    const size_t i = drawCandidate(drawn, rng);
    const std::string_view synonym = pickSynonym(i, true, rng);
    if (synonym.empty()) continue;
    words_[i] = synonym;
    ++done;
  }
  counts.replaced += done;
}

void SentencePerturber::insertWords(uint64_t n, KeyedRng& rng, EdaCounts& counts) {
  for (uint64_t k = 0; k < n; ++k) {
    candidates_.resize(words_.size());
    for (size_t i = 0; i < candidates_.size(); ++i) candidates_[i] = i;
    std::string_view synonym;
    for (size_t drawn = 0; drawn < candidates_.size() && synonym.empty(); ++drawn) {
      synonym = pickSynonym(drawCandidate(drawn, rng), false, rng);
    }
    if (synonym.empty()) return;  // no word of the sentence has synonyms
    // Place p in [0, L]: before word p, or after the last word. The new word gets one space
    // on the side that faces another word.
    const size_t p = rng.below(words_.size() + 1);
    words_.insert(words_.begin() + static_cast<ptrdiff_t>(p), synonym);
    gaps_.insert(gaps_.begin() + static_cast<ptrdiff_t>(p < words_.size() - 1 ? p + 1 : p), " ");
    ++counts.inserted;
  }
}

void SentencePerturber::swapWords(uint64_t n, KeyedRng& rng, EdaCounts& counts) {
  n = std::min<uint64_t>(n, words_.size() / 2);
  candidates_.resize(words_.size());
  for (size_t i = 0; i < candidates_.size(); ++i) candidates_[i] = i;
  for (uint64_t k = 0; k < n; ++k) {
    const size_t a = drawCandidate(2 * k, rng);
    const size_t b = drawCandidate(2 * k + 1, rng);
    std::swap(words_[a], words_[b]);
  }
  counts.swapped += n;
}

void SentencePerturber::deleteWord(size_t i) {
  // Keep the text around the word sensible: at the start keep what precedes the sentence's
  // first word, at the end what follows its last one; in between keep the gap that is not
  // plain blanks (the punctuation), or both when both hold punctuation.
  const size_t last = words_.size() - 1;
  std::string_view merged;
  if (i == 0) {
    merged = gaps_[0];
  } else if (i == last) {
    merged = gaps_[last + 1];
  } else if (isBlankOnly(gaps_[i + 1])) {
    merged = gaps_[i];
  } else if (isBlankOnly(gaps_[i])) {
    merged = gaps_[i + 1];
  } else {
    merged = store(std::string(gaps_[i]) + std::string(gaps_[i + 1]));
  }
  words_.erase(words_.begin() + static_cast<ptrdiff_t>(i));
  gaps_[i] = merged;
  gaps_.erase(gaps_.begin() + static_cast<ptrdiff_t>(i) + 1);
}

void SentencePerturber::deleteWords(uint64_t n, KeyedRng& rng, EdaCounts& counts) {
  if (words_.empty()) return;
  n = std::min<uint64_t>(n, words_.size() - 1);
  candidates_.resize(words_.size());
  for (size_t i = 0; i < candidates_.size(); ++i) candidates_[i] = i;
  for (uint64_t k = 0; k < n; ++k) drawCandidate(k, rng);
  // Delete from the back so the positions still to delete keep their meaning.
  std::sort(candidates_.begin(), candidates_.begin() + static_cast<ptrdiff_t>(n), std::greater<>());
  for (uint64_t k = 0; k < n; ++k) deleteWord(candidates_[k]);
  counts.deleted += n;
}

void SentencePerturber::perturb(std::string_view sentence, KeyedRng& rng, std::string& out,
                                EdaCounts& counts) {
  arena_.clear();
  tokenize(sentence);
  const size_t words = words_.size();
  ++counts.sentences;
  counts.words += words;
  if (words > 0) {
    replaceWords(operationCount(rates_.sr, words, rng), rng, counts);
    insertWords(operationCount(rates_.ri, words, rng), rng, counts);
    swapWords(operationCount(rates_.rs, words, rng), rng, counts);
    deleteWords(operationCount(rates_.rd, words, rng), rng, counts);
  }
  for (size_t i = 0; i < words_.size(); ++i) {
    out.append(gaps_[i]);
    out.append(words_[i]);
  }
  out.append(gaps_.back());
}

}  // namespace kdgrid::augment
