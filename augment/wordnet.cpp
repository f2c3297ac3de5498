#include "augment/wordnet.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <filesystem>
#include <span>

#include "data/file_util.h"
#include "src/core/check.h"

namespace kdgrid::augment {
namespace {

namespace fs = std::filesystem;

constexpr std::array<const char*, 4> kPosNames = {"noun", "verb", "adj", "adv"};

// Detachment rules of morphy(7WN): a word ending in `suffix` may be an inflection of the word
// with `suffix` replaced by `ending`. Adverbs have none.
struct Detachment {
  std::string_view suffix, ending;
};
constexpr Detachment kNounRules[] = {{"s", ""},      {"ses", "s"},   {"xes", "x"},   {"zes", "z"},
                                     {"ches", "ch"}, {"shes", "sh"}, {"men", "man"}, {"ies", "y"}};
constexpr Detachment kVerbRules[] = {{"s", ""},   {"ies", "y"}, {"es", "e"},  {"es", ""},
                                     {"ed", "e"}, {"ed", ""},   {"ing", "e"}, {"ing", ""}};
constexpr Detachment kAdjRules[] = {{"er", ""}, {"est", ""}, {"er", "e"}, {"est", "e"}};

std::span<const Detachment> rulesFor(int pos) {
  switch (pos) {
    case 0:
      return kNounRules;
    case 1:
      return kVerbRules;
    case 2:
      return kAdjRules;
    default:
      return {};
  }
}

char asciiLower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c;
}

// Equal ignoring ASCII case, with '_' and ' ' equal (index lemmas use '_', synset members as
// returned use ' ').
bool sameWord(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = asciiLower(a[i]), y = asciiLower(b[i]);
    if (x == '_') x = ' ';
    if (y == '_') y = ' ';
    if (x != y) return false;
  }
  return true;
}

std::string filePath(const std::string& dir, const std::string& name) {
  return (fs::path(dir) / name).string();
}

std::vector<std::string> databaseFiles() {
  std::vector<std::string> names;
  for (const char* pos : kPosNames) {
    names.push_back(std::string("index.") + pos);
    names.push_back(std::string("data.") + pos);
    names.push_back(std::string(pos) + ".exc");
  }
  return names;
}

// The space-separated fields of one database line, with its location for errors.
class LineFields {
 public:
  LineFields(std::string_view line, const std::string& path, size_t line_no)
      : rest_(line), path_(path), line_no_(line_no) {}

  std::string_view next(const char* what) {
    while (!rest_.empty() && rest_.front() == ' ') rest_.remove_prefix(1);
    const size_t end = rest_.find(' ');
    const std::string_view field = rest_.substr(0, end);
    if (field.empty()) fail(fmt::format("missing {}", what));
    rest_.remove_prefix(end == std::string_view::npos ? rest_.size() : end);
    return field;
  }
  bool empty() {
    while (!rest_.empty() && rest_.front() == ' ') rest_.remove_prefix(1);
    return rest_.empty();
  }
  uint64_t number(const char* what, int base = 10) {
    const std::string_view field = next(what);
    uint64_t value = 0;
    auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), value, base);
    if (ec != std::errc() || end != field.data() + field.size()) {
      fail(fmt::format("{} '{}' is not a base-{} number", what, field, base));
    }
    return value;
  }
  [[noreturn]] void fail(const std::string& problem) const {
    throw UsageError(
        fmt::format("WordNet file '{}', line {}: malformed ({})", path_, line_no_, problem));
  }

 private:
  std::string_view rest_;
  const std::string& path_;
  size_t line_no_;
};

// Calls fn(line, line_no) for every line of `text` that is not a license header line (those
// start with a space) and not empty.
template <typename Fn>
void forEachLine(std::string_view text, Fn&& fn) {
  size_t line_no = 0;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line.front() == ' ') continue;
    fn(line, line_no);
  }
}

}  // namespace

// Builds a WordNet from the files; a class so it may fill the private members.
class WordNet::Loader {
 public:
  explicit Loader(const std::string& dir) : dir_(dir), wn_(new WordNet()) {}

  std::unique_ptr<const WordNet> run() {
    wn_->synset_begin_.push_back(0);
    wn_->word_begin_.push_back(0);
    for (int pos = 0; pos < kNumPos; ++pos) readData(pos);
    words_.clear();
    for (int pos = 0; pos < kNumPos; ++pos) readIndex(pos);
    for (int pos = 0; pos < kNumPos; ++pos) readExceptions(pos);
    // Flatten the exception lists, in inflected-form order for a reproducible layout.
    std::vector<std::pair<std::string, std::vector<ExceptionBase>>> sorted(exceptions_.begin(),
                                                                           exceptions_.end());
    std::sort(sorted.begin(), sorted.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [inflected, bases] : sorted) {
      const auto begin = static_cast<uint32_t>(wn_->exception_bases_.size());
      wn_->exception_bases_.insert(wn_->exception_bases_.end(), bases.begin(), bases.end());
      wn_->exceptions_.emplace(inflected,
                               std::make_pair(begin, static_cast<uint32_t>(bases.size())));
    }
    return std::unique_ptr<const WordNet>(wn_.release());
  }

 private:
  // data.POS: "offset lex_filenum ss_type w_cnt word lex_id [word lex_id ...] p_cnt ... | gloss"
  void readData(int pos) {
    const std::string path = filePath(dir_, std::string("data.") + kPosNames[pos]);
    const std::string text = readWholeFile(path, "WordNet data file");
    std::vector<std::pair<uint64_t, uint32_t>>& offsets = offsets_[pos];
    forEachLine(text, [&](std::string_view line, size_t line_no) {
      LineFields f(line, path, line_no);
      const uint64_t offset = f.number("synset offset");
      f.number("lexicographer file number");
      f.next("synset type");
      const uint64_t w_cnt = f.number("word count", 16);
      if (w_cnt == 0) f.fail("word count 0");
      const auto synset = static_cast<uint32_t>(wn_->synset_begin_.size() - 1);
      for (uint64_t w = 0; w < w_cnt; ++w) {
        std::string word(f.next("word"));
        f.number("lex_id", 16);
        // Adjectives may carry a syntactic marker: "galore(ip)", "elect(p)".
        if (word.back() == ')') {
          const size_t open = word.rfind('(');
          if (open != std::string::npos && open > 0) word.resize(open);
        }
        std::replace(word.begin(), word.end(), '_', ' ');
        wn_->synset_words_.push_back(wordId(word));
      }
      wn_->synset_begin_.push_back(static_cast<uint32_t>(wn_->synset_words_.size()));
      offsets.emplace_back(offset, synset);
    });
    std::sort(offsets.begin(), offsets.end());
    for (size_t i = 1; i < offsets.size(); ++i) {
      if (offsets[i].first == offsets[i - 1].first) {
        throw UsageError(fmt::format("WordNet file '{}': synset offset {} appears twice", path,
                                     offsets[i].first));
      }
    }
  }

  // index.POS: "lemma pos synset_cnt p_cnt [ptr_symbol ...] sense_cnt tagsense_cnt offset ..."
  void readIndex(int pos) {
    const std::string path = filePath(dir_, std::string("index.") + kPosNames[pos]);
    const std::string text = readWholeFile(path, "WordNet index file");
    forEachLine(text, [&](std::string_view line, size_t line_no) {
      LineFields f(line, path, line_no);
      std::string text(f.next("lemma"));
      for (char& c : text) c = asciiLower(c);
      f.next("part of speech");
      const uint64_t synset_cnt = f.number("synset count");
      const uint64_t p_cnt = f.number("pointer count");
      for (uint64_t i = 0; i < p_cnt; ++i) f.next("pointer symbol");
      f.number("sense count");
      f.number("tagged sense count");
      Lemma& entry = lemma(text);
      if (entry.count[pos] != 0) f.fail(fmt::format("lemma '{}' listed twice", text));
      entry.begin[pos] = static_cast<uint32_t>(wn_->lemma_synsets_.size());
      for (uint64_t i = 0; i < synset_cnt; ++i) {
        const uint64_t offset = f.number("synset offset");
        const auto& offsets = offsets_[pos];
        auto it =
            std::lower_bound(offsets.begin(), offsets.end(), std::make_pair(offset, uint32_t{0}));
        if (it == offsets.end() || it->first != offset) {
          f.fail(fmt::format("synset offset {} is not in data.{}", offset, kPosNames[pos]));
        }
        wn_->lemma_synsets_.push_back(it->second);
      }
      if (!f.empty()) f.fail("more synset offsets than the synset count says");
      entry.count[pos] = static_cast<uint32_t>(wn_->lemma_synsets_.size() - entry.begin[pos]);
    });
  }

  // POS.exc: "inflected base [base ...]"; bases that are not lemmas of POS are left out.
  void readExceptions(int pos) {
    const std::string path = filePath(dir_, std::string(kPosNames[pos]) + ".exc");
    const std::string text = readWholeFile(path, "WordNet exception file");
    forEachLine(text, [&](std::string_view line, size_t line_no) {
      LineFields f(line, path, line_no);
      const std::string inflected(f.next("inflected form"));
      std::vector<ExceptionBase>& bases = exceptions_[inflected];
      do {
        const std::string_view base = f.next("base form");
        auto it = wn_->lemma_index_.find(base);
        if (it != wn_->lemma_index_.end() && wn_->lemmas_[it->second].count[pos] > 0) {
          bases.push_back({static_cast<uint8_t>(pos), it->second});
        }
      } while (!f.empty());
    });
  }

  uint32_t wordId(const std::string& word) {
    auto [it, inserted] = words_.emplace(word, static_cast<uint32_t>(wn_->word_begin_.size() - 1));
    if (inserted) {
      wn_->word_chars_ += word;
      wn_->word_begin_.push_back(static_cast<uint32_t>(wn_->word_chars_.size()));
    }
    return it->second;
  }

  Lemma& lemma(const std::string& text) {
    auto [it, inserted] =
        wn_->lemma_index_.emplace(text, static_cast<uint32_t>(wn_->lemmas_.size()));
    if (inserted) {
      wn_->lemmas_.emplace_back();
      wn_->lemmas_.back().text = it->first;  // map nodes do not move: the view stays valid
    }
    return wn_->lemmas_[it->second];
  }

  std::string dir_;
  std::unique_ptr<WordNet> wn_;
  std::array<std::vector<std::pair<uint64_t, uint32_t>>, kNumPos> offsets_;  // offset -> synset
  std::unordered_map<std::string, uint32_t> words_;                          // member -> word id
  std::unordered_map<std::string, std::vector<ExceptionBase>> exceptions_;
};

void WordNet::checkFiles(const std::string& dir) {
  for (const std::string& name : databaseFiles()) {
    const std::string path = filePath(dir, name);
    std::error_code ec;
    KDGRID_INPUT_CHECK(fs::is_regular_file(path, ec),
                       "--wordnet-dir: WordNet 3.0 file '{}' not found: install the Debian "
                       "package 'wordnet-base' (apt-get install wordnet-base)",
                       path);
  }
}

std::unique_ptr<const WordNet> WordNet::load(const std::string& dir) {
  checkFiles(dir);
  return Loader(dir).run();
}

const WordNet::Lemma* WordNet::findLemma(std::string_view text, int pos) const {
  auto it = lemma_index_.find(text);
  if (it == lemma_index_.end()) return nullptr;
  const Lemma& lemma = lemmas_[it->second];
  return lemma.count[pos] > 0 ? &lemma : nullptr;
}

void WordNet::synonyms(std::string_view word, std::vector<std::string_view>& out) const {
  std::string lower(word);
  for (char& c : lower) c = asciiLower(c);
  // (lemma, part of speech) pairs: the base forms; a handful at most.
  std::vector<std::pair<const Lemma*, int>> bases;
  auto add = [&](std::string_view text, int pos) {
    if (const Lemma* lemma = findLemma(text, pos)) bases.emplace_back(lemma, pos);
  };
  auto exc = exceptions_.find(std::string_view(lower));
  std::string candidate;
  for (int pos = 0; pos < kNumPos; ++pos) {
    add(lower, pos);
    bool listed = false;
    if (exc != exceptions_.end()) {
      for (uint32_t i = 0; i < exc->second.second; ++i) {
        const ExceptionBase& base = exception_bases_[exc->second.first + i];
        if (base.pos != pos) continue;
        bases.emplace_back(&lemmas_[base.lemma], pos);
        listed = true;
      }
    }
    if (listed) continue;
    for (const Detachment& rule : rulesFor(pos)) {
      if (lower.size() <= rule.suffix.size() || !lower.ends_with(rule.suffix)) continue;
      candidate.assign(lower, 0, lower.size() - rule.suffix.size());
      candidate += rule.ending;
      add(candidate, pos);
    }
  }
  const size_t first = out.size();
  for (const auto& [lemma, pos] : bases) {
    for (uint32_t s = 0; s < lemma->count[pos]; ++s) {
      const uint32_t synset = lemma_synsets_[lemma->begin[pos] + s];
      for (uint32_t w = synset_begin_[synset]; w < synset_begin_[synset + 1]; ++w) {
        const std::string_view member = wordText(synset_words_[w]);
        if (sameWord(member, lower)) continue;
        if (std::any_of(bases.begin(), bases.end(),
                        [&](const auto& b) { return sameWord(member, b.first->text); })) {
          continue;
        }
        // Views into word_chars_ are equal exactly when they are the same word.
        if (std::find_if(out.begin() + first, out.end(), [&](std::string_view seen) {
              return seen.data() == member.data();
            }) != out.end()) {
          continue;
        }
        out.push_back(member);
      }
    }
  }
}

}  // namespace kdgrid::augment
