// Back-translation: each sentence goes to a pivot language and back, through Apertium (one
// round trip per pivot, `apertium -u LANG-PIVOT | apertium -u PIVOT-LANG`) or through any
// external line-by-line translator (`--bt-command`). Each pivot gives one variant per document.
//
// Documents are cut into sentences (segments.h) and each sentence is sent as one line, so
// Apertium's txt format (whose deformatter escapes the characters it treats specially: [ ] ^ $
// @ \ / < > { }) keeps line and document boundaries; sentences without a letter are not sent.
// Before sending, invalid UTF-8 becomes U+FFFD and control characters become spaces; on the
// way back, unknown-word marks are removed ('*', '#', '@' — each only when the sent sentence
// did not hold that character itself), runs of blanks shrink to one space, and an empty answer
// keeps the original sentence.
//
// One LineTranslator per pivot runs for the rank's whole share of shards (line_translator.h).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "augment/line_translator.h"
#include "augment/text_augmenter.h"

namespace kdgrid::augment {

inline constexpr char kApertiumDir[] = "/usr/share/apertium";

struct BacktranslateConfig {
  std::vector<std::string> pivots = {"spa", "cat"};  // Apertium language codes
  std::string command;                               // set: the round trip is this shell command
  std::string lang = "eng";                          // the documents' language (Apertium code)
  std::string apertium_dir = kApertiumDir;           // holds modes/*.mode
  // Text sent ahead of the output awaited: more than a translator holds back in its buffers
  // and pipes (Apertium's two chains of about a dozen processes: a few MB at most).
  uint64_t lookahead_bytes = uint64_t{64} << 20;
};

// One translator per variant: what it is called in messages and its process stages.
struct TranslatorSpec {
  std::string what;
  std::vector<LineTranslator::Stage> stages;
};

// Checks that every round trip can start: `apertium` on PATH and both modes of each pivot in
// apertium_dir/modes. Throws UsageError naming the option and the Debian package to install.
void checkBacktranslate(const BacktranslateConfig& config);
std::vector<TranslatorSpec> translatorSpecs(const BacktranslateConfig& config);

std::unique_ptr<TextAugmenter> makeBacktranslator(const BacktranslateConfig& config);

// The pieces, exposed for tests.
bool needsTranslation(std::string_view segment);
std::string toTranslatorLine(std::string_view segment);
// `sent` is the line as it was sent (what decides which marks are foreign).
std::string cleanTranslation(std::string_view translated, std::string_view sent);

}  // namespace kdgrid::augment
