// WordNet 3.0 from Debian's wordnet-base: loading, morphy-style base forms, synonyms; and the
// loader's errors on missing and malformed files.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "augment/wordnet.h"
#include "src/core/check.h"
#include "tests/augment_test_util.h"
#include "tests/test_util.h"

namespace kdgrid::augment {
namespace {

std::vector<std::string> synonymsOf(const WordNet& wn, std::string_view word) {
  std::vector<std::string_view> out;
  wn.synonyms(word, out);
  return {out.begin(), out.end()};
}

bool has(const std::vector<std::string>& list, const std::string& word) {
  return std::find(list.begin(), list.end(), word) != list.end();
}

class RealWordNet : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { wn_ = WordNet::load(kWordNetDir).release(); }
  static void TearDownTestSuite() {
    delete wn_;
    wn_ = nullptr;
  }
  static const WordNet* wn_;
};
const WordNet* RealWordNet::wn_ = nullptr;

TEST_F(RealWordNet, LoadsTheWholeDatabase) {
  // WordNet 3.0 has 117659 synsets (82115 noun, 13767 verb, 18156 adjective, 3621 adverb) and
  // 147306 distinct lemma strings across the four parts of speech.
  EXPECT_EQ(wn_->numSynsets(), 117659u);
  EXPECT_EQ(wn_->numLemmas(), 147306u);
}

TEST_F(RealWordNet, SynonymsOfLemmasAndInflections) {
  const auto car = synonymsOf(*wn_, "car");
  EXPECT_TRUE(has(car, "automobile"));
  EXPECT_TRUE(has(car, "railway car"));  // '_' in the database becomes a space
  EXPECT_FALSE(has(car, "car"));
  // Detachment rules (cars -> car) and any case give the same list.
  EXPECT_EQ(synonymsOf(*wn_, "cars"), car);
  EXPECT_EQ(synonymsOf(*wn_, "CaRs"), car);
  // Exception lists: geese -> goose, ran -> run, bigger -> big.
  const auto geese = synonymsOf(*wn_, "geese");
  EXPECT_TRUE(has(geese, "fathead"));
  EXPECT_FALSE(has(geese, "goose"));
  EXPECT_TRUE(has(synonymsOf(*wn_, "ran"), "operate"));
  EXPECT_TRUE(has(synonymsOf(*wn_, "bigger"), "large"));
  // Verb rules: running -> run (besides the noun "running").
  const auto running = synonymsOf(*wn_, "running");
  EXPECT_TRUE(has(running, "operate"));
  EXPECT_FALSE(has(running, "run"));
  // Adjective markers are stripped: "galore" is stored as "galore(ip)".
  EXPECT_TRUE(has(synonymsOf(*wn_, "abounding"), "galore"));
  // Proper nouns keep their case; the word itself is left out in any case.
  const auto paris = synonymsOf(*wn_, "Paris");
  EXPECT_TRUE(has(paris, "City of Light"));
  EXPECT_FALSE(has(paris, "Paris"));
  // No synonyms: unknown words, words whose synsets have one member.
  EXPECT_TRUE(synonymsOf(*wn_, "kdgridzzz").empty());
  EXPECT_TRUE(synonymsOf(*wn_, "garden").empty());
  // No duplicates.
  for (const char* word : {"run", "good", "set", "take"}) {
    auto list = synonymsOf(*wn_, word);
    const size_t n = list.size();
    std::sort(list.begin(), list.end());
    EXPECT_EQ(std::unique(list.begin(), list.end()) - list.begin(), static_cast<ptrdiff_t>(n))
        << word;
  }
}

TEST(WordNetFiles, MissingDirectoryNamesThePackage) {
  test::TempDir dir("kdgrid-wordnet");
  for (const std::string& path : {dir.path(), dir / "absent"}) {
    try {
      WordNet::load(path);
      FAIL() << "no error";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("wordnet-base"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("--wordnet-dir"), std::string::npos) << e.what();
    }
  }
}

TEST(WordNetFiles, SmallDatabaseInTheRealFormat) {
  test::TempDir dir("kdgrid-wordnet");
  test::writeFakeWordNet(dir.path(), {{"zaak", "zaakx", "hot_zaak"}, {"zbbk", "zbbky"}});
  const auto wn = WordNet::load(dir.path());
  EXPECT_EQ(wn->numSynsets(), 2u);
  EXPECT_EQ(wn->numLemmas(), 5u);
  EXPECT_EQ(synonymsOf(*wn, "Zaak"), (std::vector<std::string>{"zaakx", "hot zaak"}));
  EXPECT_EQ(synonymsOf(*wn, "zbbks"), (std::vector<std::string>{"zbbky"}));  // noun rule -s
}

TEST(WordNetFiles, MalformedLinesAreNamed) {
  test::TempDir dir("kdgrid-wordnet");
  test::writeFakeWordNet(dir.path(), {{"zaak", "zaakx"}});
  auto expectError = [&](const std::string& file, const std::string& text,
                         const std::string& needle) {
    test::writeFakeWordNet(dir.path(), {{"zaak", "zaakx"}});
    std::ofstream(dir / file, std::ios::app) << text;
    try {
      WordNet::load(dir.path());
      FAIL() << "no error for " << text;
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expectError("data.noun", "00009999 05 n zz word 0 000 | bad count\n", "line 3");
  expectError("data.noun", "00009999 05 n 05 word 0 000 | too few words\n", "lex_id");
  expectError("index.noun", "zaaq n 1 0 1 0 00004242\n", "not in data.noun");
  expectError("index.noun", "zaaq n 1 0 1 0 00001000 00001000\n", "more synset offsets");
}

}  // namespace
}  // namespace kdgrid::augment
