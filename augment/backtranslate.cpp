#include "augment/backtranslate.h"

#include <unistd.h>

#include <algorithm>
#include <deque>
#include <filesystem>
#include <sstream>

#include "augment/segments.h"
#include "data/sample_corpus.h"
#include "src/core/check.h"

namespace kdgrid::augment {
namespace {

namespace fs = std::filesystem;

// True when `program` is an executable file in a directory of $PATH.
bool onPath(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const fs::path candidate = fs::path(dir.empty() ? "." : dir) / program;
    if (::access(candidate.c_str(), X_OK) == 0) return true;
  }
  return false;
}

std::vector<std::string> apertiumStage(const BacktranslateConfig& config, const std::string& mode) {
  return {"apertium", "-u", "-d", config.apertium_dir, mode};
}

// A shard on its way through the translators: which segment went out as which line.
struct PendingShard {
  std::vector<Segmentation> docs;          // [doc]
  std::vector<std::vector<int64_t>> line;  // [doc][segment]: line index, or -1 when kept as is
  std::vector<std::string> lines;          // as sent
};

class Backtranslator : public TextAugmenter {
 public:
  explicit Backtranslator(const BacktranslateConfig& config)
      : lookahead_bytes_(config.lookahead_bytes) {
    for (TranslatorSpec& spec : translatorSpecs(config)) {
      translators_.push_back(
          std::make_unique<LineTranslator>(std::move(spec.stages), std::move(spec.what)));
    }
  }

  uint64_t lookaheadBytes() const override { return lookahead_bytes_; }

  void endOfInput() override {
    for (auto& translator : translators_) translator->closeInput();
  }

  void submit(const InputShard& shard) override {
    PendingShard p;
    const size_t n = shard.text.numDocs();
    p.docs.reserve(n);
    p.line.resize(n);
    for (size_t d = 0; d < n; ++d) {
      const auto begin = shard.text.offsets[d], end = shard.text.offsets[d + 1];
      p.docs.push_back(
          segmentDocument(std::string_view(shard.text.bytes).substr(begin, end - begin)));
      for (std::string_view segment : p.docs.back().segments) {
        if (!needsTranslation(segment)) {
          p.line[d].push_back(-1);
          continue;
        }
        p.line[d].push_back(static_cast<int64_t>(p.lines.size()));
        p.lines.push_back(toTranslatorLine(segment));
      }
    }
    for (auto& translator : translators_) translator->submit(p.lines);
    pending_.push_back(std::move(p));
  }

  TextShard collect(const InputShard& shard, AugmentStats& stats) override {
    PendingShard p = std::move(pending_.front());
    pending_.pop_front();
    std::vector<std::vector<std::string>> answers;  // [translator][line]
    for (auto& translator : translators_) answers.push_back(translator->receive(p.lines.size()));
    VariantSink sink(Method::kBacktranslate);
    std::vector<std::string> variants(translators_.size());
    std::vector<std::string> replacement;
    for (size_t d = 0; d < p.docs.size(); ++d) {
      const Segmentation& seg = p.docs[d];
      for (size_t t = 0; t < translators_.size(); ++t) {
        replacement.clear();
        for (size_t s = 0; s < seg.segments.size(); ++s) {
          const int64_t line = p.line[d][s];
          replacement.push_back(line < 0 ? std::string(seg.segments[s])
                                         : cleanTranslation(answers[t][line], p.lines[line]));
        }
        variants[t] = joinSegments(seg, replacement);
      }
      const auto begin = shard.text.offsets[d], end = shard.text.offsets[d + 1];
      sink.add(shard.first_doc + d, std::string_view(shard.text.bytes).substr(begin, end - begin),
               variants, stats);
    }
    stats.segments += p.lines.size();
    return sink.take();
  }

  void finish() override {
    for (auto& translator : translators_) translator->finish();
  }

 private:
  uint64_t lookahead_bytes_;
  std::vector<std::unique_ptr<LineTranslator>> translators_;
  std::deque<PendingShard> pending_;
};

}  // namespace

void checkBacktranslate(const BacktranslateConfig& config) {
  if (!config.command.empty()) return;
  KDGRID_INPUT_CHECK(!config.pivots.empty(), "--bt-pivots: no pivot language given");
  KDGRID_INPUT_CHECK(onPath("apertium"),
                     "--method backtranslate: the 'apertium' program is not on PATH: install the "
                     "Debian package 'apertium' (apt-get install apertium), or give --bt-command");
  for (const std::string& pivot : config.pivots) {
    for (const std::string& mode : {config.lang + "-" + pivot, pivot + "-" + config.lang}) {
      const fs::path file = fs::path(config.apertium_dir) / "modes" / (mode + ".mode");
      std::error_code ec;
      KDGRID_INPUT_CHECK(fs::is_regular_file(file, ec),
                         "--bt-pivots {}: Apertium mode '{}' not found ({}): install the Debian "
                         "package 'apertium-{}-{}' (apt-get install apertium-{}-{})",
                         pivot, mode, file.string(), config.lang, pivot, config.lang, pivot);
    }
  }
}

std::vector<TranslatorSpec> translatorSpecs(const BacktranslateConfig& config) {
  if (!config.command.empty()) {
    return {
        {fmt::format("--bt-command '{}'", config.command), {{"/bin/sh", "-c", config.command}}}};
  }
  std::vector<TranslatorSpec> specs;
  for (const std::string& pivot : config.pivots) {
    const std::string there = config.lang + "-" + pivot, back = pivot + "-" + config.lang;
    specs.push_back(
        {fmt::format("Apertium round trip {} | {} (--bt-pivots {})", there, back, pivot),
         {apertiumStage(config, there), apertiumStage(config, back)}});
  }
  return specs;
}

std::unique_ptr<TextAugmenter> makeBacktranslator(const BacktranslateConfig& config) {
  checkBacktranslate(config);
  return std::make_unique<Backtranslator>(config);
}

bool needsTranslation(std::string_view segment) {
  return std::any_of(segment.begin(), segment.end(), [](char c) {
    const auto b = static_cast<unsigned char>(c);
    return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || b >= 0x80;
  });
}

std::string toTranslatorLine(std::string_view segment) {
  std::string line = toValidUtf8(segment);
  for (char& c : line) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7F) c = ' ';
  }
  return line;
}

std::string cleanTranslation(std::string_view translated, std::string_view sent) {
  std::string out;
  out.reserve(translated.size());
  bool blank = false;
  for (char c : translated) {
    if ((c == '*' || c == '#' || c == '@') && sent.find(c) == std::string_view::npos) continue;
    if (c == ' ' || c == '\t') {
      blank = true;
      continue;
    }
    if (blank && !out.empty()) out += ' ';
    blank = false;
    out += c;
  }
  if (out.empty()) return std::string(sent);
  return out;
}

}  // namespace kdgrid::augment
