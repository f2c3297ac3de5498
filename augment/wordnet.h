// Synonyms from WordNet 3.0, read from the database files of Debian's `wordnet-base`
// (index.{noun,verb,adj,adv}, data.{noun,verb,adj,adv}, {noun,verb,adj,adv}.exc; format in
// wndb(5WN)). Everything is loaded once into flat arrays; lookups allocate nothing but the
// caller's output vector (and short strings for the candidate base forms).
//
// A query word is matched like WordNet's own morphological processor (morphy(7WN)) does it:
// lower-cased, then for each part of speech its base forms are the word itself if it is a
// lemma, plus either the bases that the part of speech's exception list gives for it (geese ->
// goose, ran -> run) or, when it has none there, the lemmas that the detachment rules give
// (cars -> car, boxes -> box, running -> run, bigger -> big). The synonyms are the members of
// every synset of every base form, deduplicated, without the word and its base forms, in
// database order (part of speech, then sense order, then order within the synset).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace kdgrid::augment {

inline constexpr char kWordNetDir[] = "/usr/share/wordnet";

class WordNet {
 public:
  // Throws UsageError naming the file and the Debian package `wordnet-base` when a file is
  // missing, and naming file:line when one is malformed.
  static std::unique_ptr<const WordNet> load(const std::string& dir);

  // Throws the same UsageError as load() when a database file is missing, without reading.
  static void checkFiles(const std::string& dir);

  // Appends the synonyms of `word` to `out` (views valid while this WordNet lives). Multi-word
  // synonyms have spaces ("hot dog"); adjective position markers ("(a)", "(p)") are removed.
  void synonyms(std::string_view word, std::vector<std::string_view>& out) const;

  size_t numLemmas() const { return lemmas_.size(); }
  size_t numSynsets() const { return synset_begin_.size() - 1; }
  size_t numWords() const { return word_begin_.size() - 1; }

  WordNet(const WordNet&) = delete;
  WordNet& operator=(const WordNet&) = delete;

 private:
  WordNet() = default;
  class Loader;

  static constexpr int kNumPos = 4;  // noun, verb, adjective, adverb (file order)

  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  template <typename V>
  using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

  // A lemma of one or more parts of speech: its synsets of part of speech p are
  // lemma_synsets_[begin[p], begin[p] + count[p]).
  struct Lemma {
    std::string_view text;  // as in the index: lower case, '_' between words
    uint32_t begin[kNumPos] = {};
    uint32_t count[kNumPos] = {};
  };
  struct ExceptionBase {
    uint8_t pos;
    uint32_t lemma;
  };

  // The lemma `text` with synsets of part of speech `pos`, or nullptr.
  const Lemma* findLemma(std::string_view text, int pos) const;
  std::string_view wordText(uint32_t id) const {
    return std::string_view(word_chars_)
        .substr(word_begin_[id], word_begin_[id + 1] - word_begin_[id]);
  }

  StringMap<uint32_t> lemma_index_;  // lemma text -> index into lemmas_
  std::vector<Lemma> lemmas_;
  std::vector<uint32_t> lemma_synsets_;  // synset ids
  std::vector<uint32_t> synset_begin_;   // [n_synsets + 1] into synset_words_
  std::vector<uint32_t> synset_words_;   // word ids, in synset order
  std::vector<uint32_t> word_begin_;     // [n_words + 1] into word_chars_
  std::string word_chars_;               // every distinct synset member, back to back
  StringMap<std::pair<uint32_t, uint32_t>> exceptions_;  // inflected -> range in exception_bases_
  std::vector<ExceptionBase> exception_bases_;
};

}  // namespace kdgrid::augment
