#include "data/sample_corpus.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <vector>

#include "src/core/check.h"

namespace kdgrid {

namespace fs = std::filesystem;

namespace {

constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD

// Length of the valid UTF-8 sequence starting at text[i], or 0 when it is invalid
// (overlong forms, surrogates and code points above U+10FFFF are invalid).
size_t utf8SequenceLength(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char b0 = byte(i);
  if (b0 < 0x80) return 1;
  size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3;
    if (b0 == 0xE0) lo = 0xA0;  // no overlong 3-byte forms
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    if (b0 == 0xF0) lo = 0x90;  // no overlong 4-byte forms
    if (b0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  if (i + n > text.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return n;
}

std::string readFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  KDGRID_INPUT_CHECK(in.good(), "cannot read {}", path.string());
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return std::move(buffer).str();
}

std::string_view trimBlanks(std::string_view s) {
  const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
  while (!s.empty() && blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && blank(s.back())) s.remove_suffix(1);
  return s;
}

// A line with overstrikes resolved on a row of character cells, as a terminal would print it.
std::string resolveLine(std::string_view line) {
  std::vector<std::string_view> cells;
  size_t column = 0;
  for (size_t i = 0; i < line.size();) {
    const size_t n = std::max<size_t>(utf8SequenceLength(line, i), 1);
    const std::string_view cell = line.substr(i, n);
    i += n;
    const unsigned char c = static_cast<unsigned char>(cell[0]);
    if (c == '\b') {
      if (column > 0) --column;
      continue;
    }
    if ((c < 0x20 && c != '\t') || c == 0x7F) continue;  // bell, escape, ...: not text
    if (column < cells.size()) {
      // Underlining ("_\bX") and bold ("X\bX") both leave the letter.
      if (!(cell == "_" && cells[column] != " ")) cells[column] = cell;
    } else {
      cells.push_back(cell);
    }
    ++column;
  }
  std::string out;
  for (const auto& cell : cells) out += cell;
  return out;
}

// Splits "a; b; \"c; d\"" at "; " outside double quotes. A gloss with an odd number of quotes
// is split at every "; " (quote-awareness would swallow the rest of it).
std::vector<std::string_view> splitGloss(std::string_view gloss) {
  const bool balanced = std::count(gloss.begin(), gloss.end(), '"') % 2 == 0;
  std::vector<std::string_view> parts;
  bool quoted = false;
  size_t start = 0;
  for (size_t i = 0; i < gloss.size(); ++i) {
    if (gloss[i] == '"' && balanced) quoted = !quoted;
    if (!quoted && gloss[i] == ';' && i + 1 < gloss.size() && gloss[i + 1] == ' ') {
      parts.push_back(trimBlanks(gloss.substr(start, i - start)));
      start = i + 2;
    }
  }
  parts.push_back(trimBlanks(gloss.substr(start)));
  std::erase_if(parts, [](std::string_view p) { return p.empty(); });
  return parts;
}

bool endsSentence(std::string_view s) {
  return !s.empty() && (s.back() == '.' || s.back() == '?' || s.back() == '!');
}

// A lemma as text: "perk_up" -> "perk up"; adjective position markers "(a)", "(p)", "(ip)"
// dropped.
std::string lemmaText(std::string_view word) {
  for (std::string_view marker : {"(a)", "(p)", "(ip)"}) {
    if (word.size() > marker.size() && word.ends_with(marker)) {
      word.remove_suffix(marker.size());
      break;
    }
  }
  std::string text(word);
  std::replace(text.begin(), text.end(), '_', ' ');
  return text;
}

// Yields documents one at a time; nullopt when exhausted.
class DocumentSource {
 public:
  virtual ~DocumentSource() = default;
  virtual std::optional<std::string> next() = 0;
};

// Fortune files in file-name order, one fortune per document.
class FortuneSource : public DocumentSource {
 public:
  FortuneSource(std::vector<fs::path> files, SampleCorpusStats& stats)
      : files_(std::move(files)), stats_(stats) {}

  std::optional<std::string> next() override {
    for (;;) {
      while (fortune_ < fortunes_.size()) {
        std::string document = cleanFortune(fortunes_[fortune_++]);
        if (!document.empty()) return document;
      }
      if (file_index_ == files_.size()) return std::nullopt;
      loadFile(files_[file_index_++]);
    }
  }

 private:
  // Reads a file and cuts it at lines that are exactly "%".
  void loadFile(const fs::path& path) {
    text_ = toValidUtf8(readFile(path), &stats_.replaced_bytes);
    ++stats_.fortune_files;
    fortunes_.clear();
    fortune_ = 0;
    const std::string_view text = text_;
    size_t start = 0;  // first byte of the current fortune
    size_t line = 0;   // first byte of the current line
    while (line < text.size()) {
      size_t eol = text.find('\n', line);
      if (eol == std::string_view::npos) eol = text.size();
      std::string_view content = text.substr(line, eol - line);
      if (content.ends_with('\r')) content.remove_suffix(1);
      if (content == "%") {
        fortunes_.push_back(text.substr(start, line - start));
        start = eol + 1;
      }
      line = eol + 1;
    }
    if (start < text.size()) fortunes_.push_back(text.substr(start));
  }

  std::vector<fs::path> files_;
  SampleCorpusStats& stats_;
  size_t file_index_ = 0;
  std::string text_;                        // the current file
  std::vector<std::string_view> fortunes_;  // views into text_
  size_t fortune_ = 0;
};

// The four WordNet data files, each read line by line; they take turns, one document of
// kGlossesPerDocument synsets each, until all are exhausted.
class WordNetSource : public DocumentSource {
 public:
  WordNetSource(const std::vector<fs::path>& files, SampleCorpusStats& stats) : stats_(stats) {
    for (const auto& path : files) {
      auto file = std::make_unique<File>();
      file->path = path.string();
      file->in.open(path, std::ios::binary);
      KDGRID_INPUT_CHECK(file->in.good(), "cannot read {}", file->path);
      files_.push_back(std::move(file));
    }
  }

  std::optional<std::string> next() override {
    for (size_t tried = 0; tried < files_.size(); ++tried) {
      File& file = *files_[turn_];
      turn_ = (turn_ + 1) % files_.size();
      std::string document = readDocument(file);
      if (!document.empty()) return document;
    }
    return std::nullopt;
  }

 private:
  struct File {
    std::string path;
    std::ifstream in;
    uint64_t line_number = 0;
  };

  std::string readDocument(File& file) {
    std::string document;
    int glosses = 0;
    std::string line;
    while (glosses < kGlossesPerDocument && std::getline(file.in, line)) {
      ++file.line_number;
      const std::string sentence =
          wordnetSentence(toValidUtf8(line, &stats_.replaced_bytes),
                          file.path + ":" + std::to_string(file.line_number));
      if (sentence.empty()) continue;
      if (!document.empty()) document += '\n';
      document += sentence;
      ++glosses;
    }
    KDGRID_INPUT_CHECK(!file.in.bad(), "read error in {}", file.path);
    return document;
  }

  SampleCorpusStats& stats_;
  std::vector<std::unique_ptr<File>> files_;
  size_t turn_ = 0;
};

std::vector<fs::path> fortuneFiles(const std::string& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  if (fs::is_directory(dir, ec)) {
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      // Directories (the offensive off/) are skipped; .dat are strfile indexes, .u8 links.
      const std::string name = entry.path().filename().string();
      if (!entry.is_regular_file() || name.starts_with('.') || name.ends_with(".dat") ||
          name.ends_with(".u8")) {
        continue;
      }
      files.push_back(entry.path());
    }
  }
  KDGRID_INPUT_CHECK(!ec && !files.empty(),
                     "no fortune files in {}: install the Debian packages 'fortunes' and "
                     "'fortunes-min' (apt-get install fortunes fortunes-min)",
                     dir);
  std::sort(files.begin(), files.end(),
            [](const fs::path& a, const fs::path& b) { return a.filename() < b.filename(); });
  return files;
}

std::vector<fs::path> wordnetFiles(const std::string& dir) {
  std::vector<fs::path> files;
  for (const char* pos : {"adj", "adv", "noun", "verb"}) {
    const fs::path path = fs::path(dir) / (std::string("data.") + pos);
    std::error_code ec;
    KDGRID_INPUT_CHECK(fs::is_regular_file(path, ec),
                       "WordNet data file {} not found: install the Debian package "
                       "'wordnet-base' (apt-get install wordnet-base)",
                       path.string());
    files.push_back(path);
  }
  return files;
}

}  // namespace

std::string toValidUtf8(std::string_view text, uint64_t* replaced) {
  std::string out;
  out.reserve(text.size());
  bool in_invalid = false;
  for (size_t i = 0; i < text.size();) {
    const size_t n = utf8SequenceLength(text, i);
    if (n == 0) {
      if (!in_invalid) {
        out += kReplacement;
        if (replaced) ++*replaced;
      }
      in_invalid = true;
      ++i;
      continue;
    }
    in_invalid = false;
    out.append(text.substr(i, n));
    i += n;
  }
  return out;
}

std::string cleanFortune(std::string_view fortune) {
  std::string out;
  size_t start = 0;
  while (start < fortune.size()) {
    size_t eol = fortune.find('\n', start);
    if (eol == std::string_view::npos) eol = fortune.size();
    const std::string line = resolveLine(fortune.substr(start, eol - start));
    start = eol + 1;
    std::string_view kept = line;
    while (!kept.empty() && (kept.back() == ' ' || kept.back() == '\t')) kept.remove_suffix(1);
    // A blank line would end the document in `prepare`: collapse it away.
    if (trimBlanks(kept).empty()) continue;
    if (!out.empty()) out += '\n';
    out += kept;
  }
  return out;
}

std::string wordnetSentence(std::string_view line, const std::string& where) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.empty() || line.front() == ' ') return "";  // licence header
  // synset_offset lex_filenum ss_type w_cnt(hex) word lex_id(hex) [word lex_id ...] ... | gloss
  const size_t bar = line.find(" | ");
  KDGRID_INPUT_CHECK(bar != std::string_view::npos, "{}: malformed WordNet synset (no gloss)",
                     where);
  std::istringstream fields{std::string(line.substr(0, bar))};
  std::string offset, lex_filenum, ss_type, count_hex;
  fields >> offset >> lex_filenum >> ss_type >> count_hex;
  unsigned long count = 0;
  try {
    size_t used = 0;
    count = std::stoul(count_hex, &used, 16);
    if (used != count_hex.size()) count = 0;
  } catch (const std::exception&) {
    count = 0;
  }
  KDGRID_INPUT_CHECK(count > 0 && count <= 0xFF, "{}: malformed WordNet synset (word count '{}')",
                     where, count_hex);
  std::string lemmas;
  for (unsigned long w = 0; w < count; ++w) {
    std::string word, lex_id;
    KDGRID_INPUT_CHECK(static_cast<bool>(fields >> word >> lex_id),
                       "{}: malformed WordNet synset (expected {} words)", where, count);
    if (!lemmas.empty()) lemmas += ", ";
    lemmas += lemmaText(word);
  }

  std::string definition, examples;
  int n_examples = 0;
  for (std::string_view part : splitGloss(line.substr(bar + 3))) {
    if (part.front() == '"') {
      if (n_examples++ > 0) examples += "; ";
      examples += part;
    } else {
      if (!definition.empty()) definition += "; ";
      definition += part;
    }
  }
  std::string sentence = lemmas;
  if (!definition.empty()) {
    sentence += ": " + definition;
    if (!endsSentence(definition)) sentence += '.';
  } else {
    sentence += '.';
  }
  if (n_examples > 0) {
    sentence += n_examples == 1 ? " Example: " : " Examples: ";
    sentence += examples;
    if (!endsSentence(examples)) sentence += '.';
  }
  return sentence;
}

SampleCorpusStats buildSampleCorpus(const SampleCorpusOptions& options) {
  KDGRID_INPUT_CHECK(!options.out.empty(), "--out: no output file given");
  SampleCorpusStats stats;
  // Both sources are checked before anything is written.
  FortuneSource fortunes(fortuneFiles(options.fortunes_dir), stats);
  WordNetSource wordnet(wordnetFiles(options.wordnet_dir), stats);

  const std::string tmp = options.out + ".tmp";
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  KDGRID_INPUT_CHECK(out.good(), "--out: cannot write {}", tmp);

  std::optional<std::string> pending[2] = {fortunes.next(), wordnet.next()};
  DocumentSource* sources[2] = {&fortunes, &wordnet};
  uint64_t written[2] = {0, 0};
  for (;;) {
    int pick = -1;
    for (int s = 0; s < 2; ++s) {
      if (pending[s] && (pick < 0 || written[s] < written[pick])) pick = s;
    }
    if (pick < 0) break;
    const std::string& document = *pending[pick];
    // Layout: doc "\n" ("\n" doc "\n")*, so every document after the first costs one more byte.
    const uint64_t cost = document.size() + 1 + (stats.documents > 0 ? 1 : 0);
    if (stats.bytes + cost > options.max_bytes) {
      stats.truncated = true;
      break;
    }
    if (stats.documents > 0) out << '\n';
    out << document << '\n';
    stats.bytes += cost;
    ++stats.documents;
    written[pick] += document.size();
    if (pick == 0) {
      ++stats.fortune_documents;
      stats.fortune_bytes += document.size();
    } else {
      ++stats.wordnet_documents;
      stats.wordnet_glosses += std::count(document.begin(), document.end(), '\n') + 1;
      stats.wordnet_bytes += document.size();
    }
    pending[pick] = sources[pick]->next();
  }
  out.close();
  KDGRID_INPUT_CHECK(out.good(), "--out: error writing {}", tmp);
  std::error_code ec;
  fs::rename(tmp, options.out, ec);
  KDGRID_INPUT_CHECK(!ec, "--out: cannot rename {} to {}: {}", tmp, options.out, ec.message());
  return stats;
}

}  // namespace kdgrid
