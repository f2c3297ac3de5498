// Sample-corpus builder: text clean-up rules on small inputs, document layout and size cap on
// a fake package tree, and the real corpus from the installed Debian packages through the
// `kdgrid sample-corpus` binary (same bytes twice, size, document count, valid UTF-8).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "data/sample_corpus.h"
#include "src/core/check.h"
#include "tests/test_util.h"

namespace kdgrid {
namespace {

namespace fs = std::filesystem;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void spit(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

// Documents as `prepare` sees them: split at runs of blank lines.
std::vector<std::string> documents(const std::string& text) {
  std::vector<std::string> docs;
  std::string current;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) {
      if (!current.empty()) docs.push_back(current);
      current.clear();
      continue;
    }
    if (!current.empty()) current += '\n';
    current += line;
  }
  if (!current.empty()) docs.push_back(current);
  return docs;
}

// A WordNet synset line in the data.* layout.
const char kAbleLine[] =
    "00001740 00 a 01 able 0 005 = 05200169 n 0000 ! 00002098 a 0101 | (usually followed by "
    "`to') having the necessary means; \"able to swim\"; \"she was able; truly able\"  ";

TEST(SampleCorpus, Utf8Repair) {
  uint64_t replaced = 0;
  const std::string good = "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80";
  EXPECT_EQ(toValidUtf8(good, &replaced), good);
  EXPECT_EQ(replaced, 0u);
  // Latin-1 byte, overlong '/', UTF-16 surrogate, truncated sequence at the end.
  EXPECT_EQ(toValidUtf8("a\xE9z", &replaced), "a\xEF\xBF\xBDz");
  EXPECT_EQ(toValidUtf8("\xC0\xAF", &replaced), "\xEF\xBF\xBD");
  EXPECT_EQ(toValidUtf8("\xED\xA0\x80x", &replaced), "\xEF\xBF\xBDx");
  EXPECT_EQ(toValidUtf8("ok\xE2\x82", &replaced), "ok\xEF\xBF\xBD");
  EXPECT_EQ(replaced, 4u);
}

TEST(SampleCorpus, FortuneCleanup) {
  // Underline and bold overstrikes leave the letters; a bell vanishes; blank and
  // whitespace-only lines inside the fortune are collapsed; trailing blanks trimmed.
  EXPECT_EQ(cleanFortune("the notion of *_______\b\b\b\b\b\b\bfriends*\n"),
            "the notion of *friends*");
  EXPECT_EQ(cleanFortune("_\bI am B\bBold\a\n"), "I am Bold");
  EXPECT_EQ(cleanFortune("\n\nfirst  \n\n \t \nsecond\n\t-- someone\n\n"),
            "first\nsecond\n\t-- someone");
  EXPECT_EQ(cleanFortune("\n \n"), "");
  EXPECT_EQ(cleanFortune("na\xC3\xAFve\n"), "na\xC3\xAFve");
}

TEST(SampleCorpus, WordNetSentence) {
  EXPECT_EQ(wordnetSentence("  1 This software and database is being provided", "f:1"), "");
  EXPECT_EQ(wordnetSentence(kAbleLine, "f:2"),
            "able: (usually followed by `to') having the necessary means. Examples: \"able to "
            "swim\"; \"she was able; truly able\".");
  EXPECT_EQ(
      wordnetSentence("00022686 29 v 02 perk_up 1 energize(a) 0 000 | cause to be alert", "f:3"),
      "perk up, energize: cause to be alert.");
  EXPECT_EQ(wordnetSentence("00000001 29 v 01 go 0 000 | \"go away!\"", "f:4"),
            "go. Example: \"go away!\".");
  for (const char* bad :
       {"00001740 00 a 01 able 0 005 no gloss here", "00001740 00 a zz able 0 000 | gloss",
        "00001740 00 a 03 able 0 000 | gloss"}) {
    try {
      wordnetSentence(bad, "data.adj:17");
      ADD_FAILURE() << "accepted: " << bad;
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("data.adj:17"), std::string::npos) << e.what();
    }
  }
}

// A package tree in miniature: two fortune files plus the files that must be skipped, and
// four WordNet files of 25, 1, 2 and 0 synsets.
struct FakePackages {
  test::TempDir dir{"kdgrid-corpus"};
  SampleCorpusOptions options;
  FakePackages() {
    spit(dir / "fortunes/b", "bravo one\n\n\nbravo one, line 2\n%\nbravo two\n%\n");
    spit(dir / "fortunes/a", "alpha one\n%\n%\n   \n%\nalpha two\n");
    spit(dir / "fortunes/a.dat", "binary index");
    spit(dir / "fortunes/a.u8", "link");
    spit(dir / "fortunes/off/rude", "offensive\n%\n");
    std::string adj = "  1 licence header\n";
    for (int i = 0; i < 25; ++i) {
      adj += "0000" + std::to_string(1000 + i) + " 00 a 01 adj" + std::to_string(i) +
             " 0 000 | meaning " + std::to_string(i) + "  \n";
    }
    spit(dir / "wordnet/data.adj", adj);
    spit(dir / "wordnet/data.adv", "00001000 02 r 01 fast 0 000 | quickly; \"run fast\"  \n");
    spit(dir / "wordnet/data.noun",
         "00001000 03 n 01 cat 0 000 | a feline\n00001001 03 n 01 dog 0 000 | a canine\n");
    spit(dir / "wordnet/data.verb", "  1 header only\n");
    options.fortunes_dir = dir / "fortunes";
    options.wordnet_dir = dir / "wordnet";
    options.out = dir / "out.txt";
  }
};

TEST(SampleCorpus, LayoutOnFakePackages) {
  FakePackages fake;
  const SampleCorpusStats stats = buildSampleCorpus(fake.options);
  const std::string text = slurp(fake.options.out);
  EXPECT_FALSE(fs::exists(fake.options.out + ".tmp"));
  // Byte-balanced merge: fortunes start; WordNet (adj 20, adv, noun, adj 5) fills in whenever
  // it has written fewer bytes.
  const std::vector<std::string> expected = {
      "alpha one",
      [] {
        std::string d;
        for (int i = 0; i < 20; ++i) d += fmt::format("{}adj{}: meaning {}.", i ? "\n" : "", i, i);
        return d;
      }(),
      "alpha two",
      "bravo one\nbravo one, line 2",
      "bravo two",
      "fast: quickly. Example: \"run fast\".",
      "cat: a feline.\ndog: a canine.",
      "adj20: meaning 20.\nadj21: meaning 21.\nadj22: meaning 22.\nadj23: meaning 23.\n"
      "adj24: meaning 24.",
  };
  EXPECT_EQ(documents(text), expected);
  std::string joined;
  for (const auto& d : expected) joined += (joined.empty() ? "" : "\n") + d + "\n";
  EXPECT_EQ(text, joined);  // exactly one blank line between documents, final newline
  EXPECT_EQ(stats.bytes, text.size());
  EXPECT_EQ(stats.documents, 8u);
  EXPECT_EQ(stats.fortune_files, 2u);
  EXPECT_EQ(stats.fortune_documents, 4u);
  EXPECT_EQ(stats.wordnet_documents, 4u);
  EXPECT_EQ(stats.wordnet_glosses, 28u);
  EXPECT_FALSE(stats.truncated);
  EXPECT_EQ(text.find("offensive"), std::string::npos);
  EXPECT_EQ(text.find("binary index"), std::string::npos);

  // A cap keeps whole documents only: the longest prefix of the same sequence that fits.
  for (uint64_t cap : {uint64_t{10}, uint64_t{200}, uint64_t{260}, uint64_t{text.size() - 1}}) {
    fake.options.max_bytes = cap;
    const SampleCorpusStats capped = buildSampleCorpus(fake.options);
    const std::string small = slurp(fake.options.out);
    EXPECT_LE(small.size(), cap);
    EXPECT_TRUE(capped.truncated);
    EXPECT_EQ(small, text.substr(0, small.size())) << "cap " << cap;
    const std::vector<std::string> docs = documents(small);
    ASSERT_LT(docs.size(), expected.size());
    EXPECT_EQ(docs, std::vector<std::string>(expected.begin(), expected.begin() + docs.size()));
    EXPECT_GT(small.size() + expected[docs.size()].size() + 2, cap) << "stopped early at " << cap;
  }
}

TEST(SampleCorpus, MissingPackagesAreNamed) {
  FakePackages fake;
  auto expectError = [&](const std::string& needle) {
    try {
      buildSampleCorpus(fake.options);
      ADD_FAILURE() << "no error";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(fake.options.out));
  };
  fs::remove(fake.dir / "wordnet/data.verb");
  expectError("'wordnet-base'");
  fake.options.fortunes_dir = fake.dir / "nowhere";
  expectError("'fortunes'");
  fs::remove_all(fake.dir / "fortunes");
  fs::create_directories(fake.dir / "fortunes/off");
  spit(fake.dir / "fortunes/x.dat", "index only");
  fake.options.fortunes_dir = fake.dir / "fortunes";
  expectError("'fortunes'");
}

// The real thing, through the binary, from the installed Debian packages (launch/setup.sh
// installs fortunes, fortunes-min and wordnet-base).
TEST(SampleCorpus, BinaryIsDeterministicAndWellFormed) {
  test::TempDir dir{"kdgrid-corpus"};
  std::string log;
  const std::string cmd = test::kdgridBinary() + " sample-corpus --out ";
  ASSERT_EQ(test::runCommand(cmd + dir / "a.txt", &log), 0) << log;
  ASSERT_EQ(test::runCommand(cmd + dir / "b.txt", &log), 0) << log;
  const std::string a = slurp(dir / "a.txt");
  EXPECT_TRUE(a == slurp(dir / "b.txt")) << "two runs gave different bytes";

  EXPECT_GE(a.size(), 3'000'000u);  // default --max-mb 5: both sources have more than enough
  EXPECT_LE(a.size(), 5'000'000u);
  EXPECT_EQ(toValidUtf8(a), a) << "not valid UTF-8";
  const std::vector<std::string> docs = documents(a);
  EXPECT_GT(docs.size(), 10'000u);
  // Exactly one blank line between documents and none inside: re-joining gives the file back.
  std::string joined;
  for (const auto& d : docs) joined += (joined.empty() ? "" : "\n") + d + "\n";
  EXPECT_TRUE(joined == a) << "documents are not separated by exactly one blank line";
  size_t wordnet_docs = 0;
  for (const auto& d : docs) {
    EXPECT_FALSE(d.empty());
    if (d.find("Example: \"") != std::string::npos) ++wordnet_docs;
  }
  EXPECT_GT(wordnet_docs, 500u);  // both sources are present
  EXPECT_EQ(a.find('\b'), std::string::npos);

  // A smaller cap gives a prefix of the same corpus.
  ASSERT_EQ(test::runCommand(cmd + dir / "c.txt --max-mb 0.5", &log), 0) << log;
  const std::string c = slurp(dir / "c.txt");
  EXPECT_LE(c.size(), 500'000u);
  EXPECT_GT(c.size(), 490'000u);
  EXPECT_TRUE(c == a.substr(0, c.size()));
}

TEST(SampleCorpus, BinaryUsageErrors) {
  test::TempDir dir{"kdgrid-corpus"};
  std::string log;
  const std::string cmd = test::kdgridBinary() + " sample-corpus ";
  EXPECT_EQ(test::runCommand(cmd + "--out " + dir / "x.txt --max-mb 0", &log), 2);
  EXPECT_NE(log.find("--max-mb"), std::string::npos) << log;
  log.clear();
  EXPECT_EQ(test::runCommand(cmd + "--max-mb 1", &log), 2);
  EXPECT_NE(log.find("out"), std::string::npos) << log;
  log.clear();
  EXPECT_EQ(test::runCommand(cmd + "--out " + dir / "x.txt --wordnet-dir " + dir / "none", &log),
            2);
  EXPECT_NE(log.find("wordnet-base"), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(dir / "x.txt"));
}

}  // namespace
}  // namespace kdgrid
