// The built-in sample corpus (`kdgrid sample-corpus`): a few MB of real English text from two
// Debian packages, built deterministically so every machine gets the same bytes.
//
// Sources:
//   - `fortunes` / `fortunes-min`: every plain fortune file in FORTUNES_DIR (file-name order;
//     `.dat` index files, `.u8` links and the offensive `off/` directory are skipped). A fortune
//     is the text between lines holding a single `%`; one fortune = one document.
//   - `wordnet-base`: the synset lines of WordNet 3.0's data.adj, data.adv, data.noun and
//     data.verb. Each synset becomes one line, "lemma, lemma: definition. Example: "...".", and
//     kGlossesPerDocument consecutive synsets of one file form a document.
//
// Output: UTF-8 text, documents separated by exactly one blank line (what `prepare` splits at);
// no document contains an empty or whitespace-only line, so each stays one document. The two
// sources are merged byte-balanced (the next document comes from whichever source has written
// fewer bytes so far, fortunes on a tie; the four WordNet files take turns document by
// document), so any prefix of the corpus mixes both. Writing stops before the first document
// that would take the file past max_bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace kdgrid {

inline constexpr char kFortunesDir[] = "/usr/share/games/fortunes";
inline constexpr char kWordNetDir[] = "/usr/share/wordnet";
inline constexpr int kGlossesPerDocument = 20;

struct SampleCorpusOptions {
  std::string out;                 // written as out + ".tmp", then renamed
  uint64_t max_bytes = 5'000'000;  // upper bound on the file size
  std::string fortunes_dir = kFortunesDir;
  std::string wordnet_dir = kWordNetDir;
};

struct SampleCorpusStats {
  uint64_t bytes = 0;  // size of the written file
  uint64_t documents = 0;
  uint64_t fortune_files = 0;  // fortune files read
  uint64_t fortune_documents = 0;
  uint64_t fortune_bytes = 0;  // document text only, without separators
  uint64_t wordnet_documents = 0;
  uint64_t wordnet_glosses = 0;
  uint64_t wordnet_bytes = 0;
  uint64_t replaced_bytes = 0;  // invalid UTF-8 sequences replaced by U+FFFD
  bool truncated = false;       // stopped by max_bytes before both sources ran out
};

// Builds the corpus. Throws UsageError naming the directory and the Debian package to install
// when a source is missing, and naming the output file when it cannot be written.
SampleCorpusStats buildSampleCorpus(const SampleCorpusOptions& options);

// The pieces, exposed for tests.

// Valid UTF-8 copy of `text`: each maximal invalid sequence becomes U+FFFD (counted in
// *replaced when given).
std::string toValidUtf8(std::string_view text, uint64_t* replaced = nullptr);

// One fortune as a document: terminal overstrikes resolved ("_\bX" and "X\bX" give "X"),
// other control characters except tab dropped, trailing blanks trimmed and empty or
// whitespace-only lines removed. Input must be valid UTF-8. Empty result = nothing left.
std::string cleanFortune(std::string_view fortune);

// One WordNet synset line as a sentence, or "" for a header line (starting with a space).
// Throws UsageError naming `where` (file:line) on a malformed line.
std::string wordnetSentence(std::string_view line, const std::string& where);

}  // namespace kdgrid
