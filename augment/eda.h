// Perturbation: the four word operations of EDA ("easy data augmentation": synonym
// replacement, random insertion, random swap, random deletion) on one sentence.
//
// Words: maximal runs of letters and digits (ASCII, and non-ASCII code points outside the
// punctuation and symbol blocks), joined across a single inner apostrophe or hyphen ("don't",
// "well-known"). The text between words (spaces, punctuation) stays where it is; operations
// move, replace, add and remove words only.
//
// With L words in the sentence, each operation runs n = floor(rate * L) times, plus once more
// with probability frac(rate * L), so its expected count is exactly rate * L for every
// sentence length. In this order:
//   SR  replace n distinct words, drawn at random among those that are not stop words and have
//       WordNet synonyms, each by one of its synonyms drawn at random, in the word's case
//       pattern (Capitalised, UPPER or as WordNet writes it);
//   RI  n times: draw a random word (not a stop word) that has synonyms and insert one of its
//       synonyms at a random position (any of the L' + 1 places of the current L' words);
//   RS  exchange the words of n disjoint random pairs of positions (n <= L' / 2);
//   RD  delete n distinct random words (n <= L' - 1: a sentence never loses its last word).
// Every draw comes from the caller's KeyedRng, so a sentence's result depends on the rng's key
// and the sentence's place in the document only.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "augment/keyed_rng.h"
#include "augment/wordnet.h"

namespace kdgrid::augment {

// Per-operation rates: the fraction of a sentence's words each operation touches. [0, 0.5].
struct EdaRates {
  double sr = 0.1;
  double ri = 0.1;
  double rs = 0.1;
  double rd = 0.1;
};

// What the operations did, accumulated over calls.
struct EdaCounts {
  uint64_t sentences = 0;
  uint64_t words = 0;     // words of the input sentences
  uint64_t replaced = 0;  // SR: words replaced
  uint64_t inserted = 0;  // RI: synonyms inserted (one each, however many words it has)
  uint64_t swapped = 0;   // RS: pairs exchanged
  uint64_t deleted = 0;   // RD: words deleted
  EdaCounts& operator+=(const EdaCounts& o);
};

// floor(rate * words), plus one with probability frac(rate * words).
uint64_t operationCount(double rate, size_t words, KeyedRng& rng);

// One per thread: holds scratch space reused from sentence to sentence.
class SentencePerturber {
 public:
  SentencePerturber(const WordNet& wordnet, const EdaRates& rates);

  // Appends the perturbed `sentence` to `out`.
  void perturb(std::string_view sentence, KeyedRng& rng, std::string& out, EdaCounts& counts);

 private:
  void tokenize(std::string_view sentence);
  // A random position in [0, candidates_.size()) not drawn before since the last reset: a
  // partial Fisher-Yates shuffle of candidates_.
  size_t drawCandidate(size_t drawn, KeyedRng& rng);
  // A random synonym of words_[i] (in its case pattern for `match_case`), or an empty view.
  std::string_view pickSynonym(size_t i, bool match_case, KeyedRng& rng);
  std::string_view store(std::string text);
  void replaceWords(uint64_t n, KeyedRng& rng, EdaCounts& counts);
  void insertWords(uint64_t n, KeyedRng& rng, EdaCounts& counts);
  void swapWords(uint64_t n, KeyedRng& rng, EdaCounts& counts);
  void deleteWords(uint64_t n, KeyedRng& rng, EdaCounts& counts);
  void deleteWord(size_t i);

  const WordNet& wordnet_;
  EdaRates rates_;
  // The sentence as gaps_[0] words_[0] gaps_[1] ... words_[L-1] gaps_[L].
  std::vector<std::string_view> words_;
  std::vector<std::string_view> gaps_;
  std::vector<size_t> candidates_;
  std::vector<std::string_view> synonyms_;
  std::string lower_;
  std::deque<std::string> arena_;  // texts made for this sentence (stable addresses)
};

}  // namespace kdgrid::augment
