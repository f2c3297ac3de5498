// Perturbation (EDA): each operation's rate, determinism, case and punctuation handling.
//
// Rate tests use a WordNet written by the test (augment_test_util.h): 40 made-up nouns, each
// with two one-word synonyms, none a stop word. Sentences are 3..20 distinct such words joined
// by single spaces, so the effect of each operation can be read off the output exactly:
//   SR: positions whose word changed (a synonym is never the word itself),
//   RI: words gained, RS: positions changed / 2 (the words are distinct), RD: words lost.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "augment/eda.h"
#include "augment/perturb.h"
#include "tests/augment_test_util.h"
#include "tests/test_util.h"

namespace kdgrid::augment {
namespace {

std::vector<std::string> splitWords(const std::string& s) {
  std::vector<std::string> words;
  std::istringstream in(s);
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

std::string joinWords(const std::vector<std::string>& words) {
  std::string s;
  for (const auto& w : words) s += (s.empty() ? "" : " ") + w;
  return s;
}

class EdaWithFakeWordNet : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 40; ++i) {
      const std::string w =
          fmt::format("q{}{}k", static_cast<char>('a' + i / 8), static_cast<char>('a' + i % 8));
      vocab_.push_back(w);
      synsets_.push_back({w, w + "x", w + "y"});
    }
    test::writeFakeWordNet(dir_.path(), synsets_);
    wn_ = WordNet::load(dir_.path());
  }

  // Sentence i of the sample: 3..20 distinct vocabulary words.
  std::vector<std::string> sentence(uint64_t i) const {
    KeyedRng rng(99, i, 0);
    const size_t length = 3 + rng.below(18);
    std::vector<std::string> pool = vocab_;
    std::vector<std::string> words;
    for (size_t k = 0; k < length; ++k) {
      const size_t j = k + rng.below(pool.size() - k);
      std::swap(pool[k], pool[j]);
      words.push_back(pool[k]);
    }
    return words;
  }

  test::TempDir dir_{"kdgrid-eda"};
  std::vector<std::string> vocab_;
  std::vector<std::vector<std::string>> synsets_;
  std::unique_ptr<const WordNet> wn_;
};

enum class Op { kSr, kRi, kRs, kRd };

// What one operation did to a sentence, read off the output alone.
uint64_t observedCount(Op op, const std::vector<std::string>& in,
                       const std::vector<std::string>& out) {
  switch (op) {
    case Op::kSr:
    case Op::kRs: {
      EXPECT_EQ(in.size(), out.size());
      uint64_t changed = 0;
      for (size_t i = 0; i < std::min(in.size(), out.size()); ++i) changed += in[i] != out[i];
      if (op == Op::kSr) return changed;
      EXPECT_EQ(std::multiset<std::string>(in.begin(), in.end()),
                std::multiset<std::string>(out.begin(), out.end()));
      EXPECT_EQ(changed % 2, 0u);
      return changed / 2;
    }
    case Op::kRi:
      return out.size() - in.size();
    case Op::kRd:
      return in.size() - out.size();
  }
  return 0;
}

TEST_F(EdaWithFakeWordNet, EachOperationRespectsItsRate) {
  // n operations on a sentence of L words: floor(rL) plus a Bernoulli(frac(rL)) draw. Checks:
  // 1. n is floor(rL) or ceil(rL) for every sentence;
  // 2. among the N_L sentences of length L, the number that got the extra operation is a sum
  //    of N_L independent Bernoulli(frac(rL)) draws: by Hoeffding it is within
  //    t_L = sqrt(N_L ln(2/delta) / 2) of N_L frac(rL) except with probability delta;
  // 3. the total over all S sentences is within sqrt(S ln(2/delta) / 2) of r * (sum of L) (each
  //    sentence contributes a value in an interval of width 1 around its mean).
  // delta = 1e-6 per check.
  constexpr uint64_t kSentences = 20000;
  const double log_term = std::log(2 / 1e-6) / 2;
  for (Op op : {Op::kSr, Op::kRi, Op::kRs, Op::kRd}) {
    for (double rate : {0.1, 0.3}) {
      EdaRates rates{0, 0, 0, 0};
      (op == Op::kSr   ? rates.sr
       : op == Op::kRi ? rates.ri
       : op == Op::kRs ? rates.rs
                       : rates.rd) = rate;
      SentencePerturber perturber(*wn_, rates);
      EdaCounts counts;
      std::map<size_t, std::pair<uint64_t, uint64_t>> by_length;  // L -> (sentences, extra ops)
      uint64_t total = 0, words = 0;
      for (uint64_t i = 0; i < kSentences; ++i) {
        const std::vector<std::string> in = sentence(i);
        KeyedRng rng(5, i, static_cast<uint64_t>(op));
        std::string out;
        perturber.perturb(joinWords(in), rng, out, counts);
        const uint64_t n = observedCount(op, in, splitWords(out));
        const double expected = rate * static_cast<double>(in.size());
        const auto low = static_cast<uint64_t>(std::floor(expected));
        ASSERT_TRUE(n == low || n == low + 1)
            << "op " << static_cast<int>(op) << " rate " << rate << ": " << n << " operations on "
            << in.size() << " words";
        auto& [sentences, extra] = by_length[in.size()];
        ++sentences;
        extra += n - low;
        total += n;
        words += in.size();
      }
      for (const auto& [length, tally] : by_length) {
        const double expected = rate * static_cast<double>(length);
        const double p = expected - std::floor(expected);
        const double t = std::sqrt(static_cast<double>(tally.first) * log_term);
        EXPECT_LT(std::abs(static_cast<double>(tally.second) - tally.first * p), t)
            << "op " << static_cast<int>(op) << " rate " << rate << " length " << length;
      }
      const double t = std::sqrt(kSentences * log_term);
      EXPECT_LT(std::abs(static_cast<double>(total) - rate * static_cast<double>(words)), t)
          << "op " << static_cast<int>(op) << " rate " << rate;
      // The perturber's own counts agree with what the output shows.
      EXPECT_EQ(counts.words, words);
      EXPECT_EQ(op == Op::kSr   ? counts.replaced
                : op == Op::kRi ? counts.inserted
                : op == Op::kRs ? counts.swapped
                                : counts.deleted,
                total);
    }
  }
}

TEST_F(EdaWithFakeWordNet, ReplacementsAndInsertionsAreSynonyms) {
  std::set<std::string> allowed(vocab_.begin(), vocab_.end());
  for (const auto& synset : synsets_) allowed.insert(synset.begin(), synset.end());
  SentencePerturber perturber(*wn_, EdaRates{0.3, 0.3, 0, 0});
  EdaCounts counts;
  for (uint64_t i = 0; i < 500; ++i) {
    KeyedRng rng(1, i, 0);
    std::string out;
    perturber.perturb(joinWords(sentence(i)), rng, out, counts);
    for (const std::string& w : splitWords(out)) EXPECT_TRUE(allowed.count(w)) << w;
  }
  EXPECT_GT(counts.replaced, 0u);
  EXPECT_GT(counts.inserted, 0u);
}

TEST_F(EdaWithFakeWordNet, StopWordsAndWordsWithoutSynonymsStay) {
  // Only "the", "of" (stop words) and "garden" (not in this WordNet) besides one real word.
  SentencePerturber perturber(*wn_, EdaRates{0.5, 0, 0, 0});
  EdaCounts counts;
  for (uint64_t v = 0; v < 200; ++v) {
    KeyedRng rng(2, 0, v);
    std::string out;
    perturber.perturb("the garden of qaak", rng, out, counts);
    EXPECT_TRUE(out == "the garden of qaak" || out == "the garden of qaakx" ||
                out == "the garden of qaaky")
        << out;
  }
}

TEST_F(EdaWithFakeWordNet, DeletionKeepsPunctuationInPlace) {
  // Every result of deleting one or two of three words, by the gap rules of deleteWord.
  const std::set<std::string> possible = {"qbbk qcck.", "qaak, qcck.", "qaak, qbbk.",
                                          "qbbk.",      "qaak.",       "qcck."};
  SentencePerturber perturber(*wn_, EdaRates{0, 0, 0, 0.5});
  EdaCounts counts;
  std::set<std::string> seen;
  for (uint64_t v = 0; v < 400; ++v) {
    KeyedRng rng(3, 0, v);
    std::string out;
    perturber.perturb("qaak, qbbk qcck.", rng, out, counts);
    EXPECT_TRUE(possible.count(out)) << out;
    seen.insert(out);
  }
  EXPECT_EQ(seen, possible);
}

TEST_F(EdaWithFakeWordNet, InsertionSpacing) {
  SentencePerturber perturber(*wn_, EdaRates{0, 0.5, 0, 0});
  EdaCounts counts;
  std::set<std::string> seen;
  for (uint64_t v = 0; v < 400; ++v) {
    KeyedRng rng(4, 0, v);
    std::string out;
    perturber.perturb("(qaak qbbk.)", rng, out, counts);
    seen.insert(out);
    EXPECT_EQ(out.front(), '(');
    EXPECT_EQ(out.substr(out.size() - 2), ".)");
    EXPECT_EQ(out.find("  "), std::string::npos) << out;
  }
  EXPECT_TRUE(seen.count("(qaakx qaak qbbk.)"));  // before the first word
  EXPECT_TRUE(seen.count("(qaak qbbk qbbky.)"));  // after the last
  EXPECT_TRUE(seen.count("(qaak qaaky qbbk.)"));  // between
}

TEST_F(EdaWithFakeWordNet, DocumentVariantsAreKeyedByDocumentAndVariant) {
  PerturbConfig config;
  config.num_aug = 3;
  config.seed = 17;
  SentencePerturber perturber(*wn_, config.rates);
  EdaCounts counts;
  const std::string doc = "qaak qbbk qcck qddk. Qeek qffk!\n  qggk qhhk qaak qbbk\n";
  const auto a = perturbDocument(doc, 42, config, perturber, counts);
  const auto b = perturbDocument(doc, 42, config, perturber, counts);
  EXPECT_EQ(a, b);
  ASSERT_EQ(a.size(), 3u);
  EXPECT_NE(a[0], a[1]);
  EXPECT_NE(a, perturbDocument(doc, 43, config, perturber, counts));
  config.seed = 18;
  EXPECT_NE(a, perturbDocument(doc, 42, config, perturber, counts));
  // The layout between sentences survives: the second line keeps its indentation.
  for (const std::string& v : a) {
    EXPECT_NE(v.find("\n  "), std::string::npos) << v;
    EXPECT_EQ(v.back(), '\n');
  }
}

TEST(EdaRealWordNet, ReplacementKeepsTheCasePattern) {
  const auto wn = WordNet::load(kWordNetDir);
  std::vector<std::string_view> synonyms;
  wn->synonyms("cars", synonyms);
  SentencePerturber perturber(*wn, EdaRates{0.5, 0, 0, 0});
  EdaCounts counts;
  int upper = 0, capital = 0;
  for (uint64_t v = 0; v < 100; ++v) {
    KeyedRng rng(6, 0, v);
    std::string out;
    perturber.perturb("CARS and Cars!", rng, out, counts);
    // Two words of which "and" is a stop word: "CARS" and "Cars" may change.
    const size_t space = out.find(" and ");
    ASSERT_NE(space, std::string::npos) << out;
    const std::string first = out.substr(0, space);
    const std::string second = out.substr(space + 5, out.size() - space - 6);
    ASSERT_EQ(out.back(), '!');
    bool first_ok = first == "CARS", second_ok = second == "Cars";
    for (std::string_view s : synonyms) {
      std::string up(s), cap(s);
      for (char& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      cap[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(cap[0])));
      if (first == up) first_ok = true, ++upper;
      if (second == cap) second_ok = true, ++capital;
    }
    EXPECT_TRUE(first_ok) << out;
    EXPECT_TRUE(second_ok) << out;
  }
  EXPECT_GT(upper, 0);
  EXPECT_GT(capital, 0);
}

TEST(EdaOperationCount, FloorPlusBernoulli) {
  KeyedRng rng(8, 0, 0);
  uint64_t sum = 0;
  constexpr int kN = 20000;
  for (int i = 0; i < kN; ++i) {
    const uint64_t n = operationCount(0.25, 7, rng);  // 1.75
    ASSERT_TRUE(n == 1 || n == 2);
    sum += n;
  }
  // Hoeffding, width-1 terms, false alarm < 1e-6.
  EXPECT_LT(std::abs(static_cast<double>(sum) - 1.75 * kN), std::sqrt(kN * std::log(2e6) / 2));
  EXPECT_EQ(operationCount(0.5, 4, rng), 2u);  // exactly 2: no draw decides
  EXPECT_EQ(operationCount(0.0, 9, rng), 0u);
}

}  // namespace
}  // namespace kdgrid::augment
