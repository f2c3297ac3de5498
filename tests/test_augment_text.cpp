// Augmentation building blocks without external programs: sentence segmentation, the keyed
// random stream, the translator line clean-up and the variant sink.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "augment/backtranslate.h"
#include "augment/keyed_rng.h"
#include "augment/segments.h"
#include "augment/text_augmenter.h"

namespace kdgrid::augment {
namespace {

std::vector<std::string> segmentsOf(std::string_view doc) {
  const Segmentation seg = segmentDocument(doc);
  return {seg.segments.begin(), seg.segments.end()};
}

std::string unchanged(std::string_view doc) {
  const Segmentation seg = segmentDocument(doc);
  const std::vector<std::string> same(seg.segments.begin(), seg.segments.end());
  return joinSegments(seg, same);
}

TEST(AugmentSegments, SplitsLinesAndSentences) {
  EXPECT_EQ(segmentsOf("The cat sat. The dog ran!  Did it?\nNew line here\n"),
            (std::vector<std::string>{"The cat sat.", "The dog ran!", "Did it?", "New line here"}));
  // Closing quotes and brackets stay with their sentence; "..." and "?!" are one stop.
  EXPECT_EQ(segmentsOf("He said \"Stop.\" Then (he left.) \"Why?!\" Wait... Now"),
            (std::vector<std::string>{"He said \"Stop.\"", "Then (he left.)", "\"Why?!\"",
                                      "Wait...", "Now"}));
  // No split: abbreviations, initials, decimals, a lower-case continuation.
  EXPECT_EQ(segmentsOf("Mr. Smith met Dr. J. Watson, e.g. at 3.14 p.m. and left. so what"),
            (std::vector<std::string>{
                "Mr. Smith met Dr. J. Watson, e.g. at 3.14 p.m. and left. so what"}));
  // A sentence ending before a digit or an opening quote splits.
  EXPECT_EQ(segmentsOf("It was 1999. 2000 came. 'Yes' he said."),
            (std::vector<std::string>{"It was 1999.", "2000 came.", "'Yes' he said."}));
}

TEST(AugmentSegments, GapsKeepLayout) {
  const std::string doc = "  indented line.  Two\t\r\n\n\tTabbed.\r\nlast";
  const Segmentation seg = segmentDocument(doc);
  ASSERT_EQ(seg.segments.size(), 4u);
  ASSERT_EQ(seg.gaps.size(), 5u);
  EXPECT_EQ(seg.gaps[0], "  ");
  EXPECT_EQ(seg.segments[0], "indented line.");
  EXPECT_EQ(seg.gaps[1], "  ");
  EXPECT_EQ(seg.segments[1], "Two");
  EXPECT_EQ(seg.gaps[2], "\t\r\n\n\t");
  EXPECT_EQ(seg.segments[2], "Tabbed.");
  EXPECT_EQ(seg.gaps[3], "\r\n");
  EXPECT_EQ(seg.segments[3], "last");
  EXPECT_EQ(seg.gaps[4], "");
  std::vector<std::string> upper;
  for (auto s : seg.segments) {
    std::string u(s);
    for (char& c : u) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    upper.push_back(u);
  }
  EXPECT_EQ(joinSegments(seg, upper), "  INDENTED LINE.  TWO\t\r\n\n\tTABBED.\r\nLAST");
}

TEST(AugmentSegments, JoinOfUnchangedSegmentsIsTheDocument) {
  const std::vector<std::string> docs = {"",
                                         "\n\n",
                                         "   ",
                                         "one",
                                         "a. B. c! D? e",
                                         "x\r\n",
                                         "é. Ü. 'q' \"r\"",
                                         "\t\tA.\t\tB.\t\t",
                                         "A.\n\nB.\n",
                                         "...",
                                         "?! ?! X",
                                         "Mr. A. B. C.  D"};
  for (const std::string& doc : docs) {
    EXPECT_EQ(unchanged(doc), doc) << doc;
    for (auto s : segmentDocument(doc).segments) {
      EXPECT_FALSE(s.empty());
      EXPECT_EQ(s.find('\n'), std::string_view::npos);
      EXPECT_NE(s.front(), ' ');
      EXPECT_NE(s.back(), ' ');
    }
  }
  // Every byte string, too (a fixed pseudo-random sample of short ones over a small alphabet).
  const std::string alphabet = "aZ .!?\n\r\t\"')(3";
  KeyedRng rng(1, 2, 3);
  for (int i = 0; i < 3000; ++i) {
    std::string doc;
    const uint64_t length = rng.below(24);
    for (uint64_t k = 0; k < length; ++k) doc += alphabet[rng.below(alphabet.size())];
    ASSERT_EQ(unchanged(doc), doc) << doc;
  }
}

TEST(AugmentKeyedRng, StreamDependsOnTheKeyOnly) {
  KeyedRng a(7, 100, 2), b(7, 100, 2);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(a.next(), b.next());
  // Neighbouring keys give unrelated streams.
  const uint64_t first = KeyedRng(7, 100, 2).next();
  EXPECT_NE(first, KeyedRng(7, 101, 2).next());
  EXPECT_NE(first, KeyedRng(7, 100, 3).next());
  EXPECT_NE(first, KeyedRng(8, 100, 2).next());
  // The same value on every platform: SplitMix64 and the key mixing are written out.
  EXPECT_EQ(KeyedRng(0, 0, 0).next(), KeyedRng(0, 0, 0).next());
}

TEST(AugmentKeyedRng, BelowIsUniform) {
  // 6 buckets, N draws: each count is Binomial(N, 1/6). Hoeffding: P(|count - N/6| >= t) <=
  // 2 exp(-2 t^2 / N); t = sqrt(N ln(2 / 1e-9) / 2) makes a false alarm below 1e-9 per bucket.
  constexpr int kN = 60000;
  const double t = std::sqrt(kN * std::log(2 / 1e-9) / 2);
  KeyedRng rng(3, 4, 5);
  std::vector<int> counts(6);
  double sum = 0;
  for (int i = 0; i < kN; ++i) {
    const uint64_t v = rng.below(6);
    ASSERT_LT(v, 6u);
    ++counts[v];
    const double u = rng.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  for (int c : counts) EXPECT_LT(std::abs(c - kN / 6.0), t);
  // Mean of N uniforms: Hoeffding with range 1.
  EXPECT_LT(std::abs(sum - kN / 2.0), t);
  EXPECT_EQ(KeyedRng(1, 1, 1).below(1), 0u);
}

TEST(AugmentBacktranslateText, LinesSentAndCleaned) {
  EXPECT_TRUE(needsTranslation("a"));
  EXPECT_TRUE(needsTranslation("123 é"));
  EXPECT_FALSE(needsTranslation("*** 42 --- !!"));
  // Control characters become spaces; invalid UTF-8 becomes U+FFFD.
  EXPECT_EQ(toTranslatorLine("a\tb\x01"
                             "c\x7f"),
            "a b c ");
  EXPECT_EQ(toTranslatorLine("x\xff"
                             "y"),
            "x\xEF\xBF\xBDy");
  // Unknown-word marks go unless the sent sentence held the character; blanks shrink.
  EXPECT_EQ(cleanTranslation(" *gato  and #dog@  ", "cat and dog"), "gato and dog");
  EXPECT_EQ(cleanTranslation("issue #10 is *big*", "issue #10 is *big*"), "issue #10 is *big*");
  EXPECT_EQ(cleanTranslation("mail @me #x", "mail @me"), "mail @me x");
  // An empty answer keeps the sentence.
  EXPECT_EQ(cleanTranslation("  ", "Hello."), "Hello.");
}

TEST(AugmentVariantSink, DropsIdenticalAndDuplicateVariants) {
  VariantSink sink(Method::kBacktranslate);
  AugmentStats stats;
  const std::vector<std::string> first = {"b", "a", "b", "c"};
  sink.add(10, "a", first, stats);
  const std::vector<std::string> second = {"x"};
  sink.add(11, "y", second, stats);
  const TextShard shard = sink.take();
  EXPECT_EQ(shard.bytes, "bcx");
  EXPECT_EQ(shard.offsets, (std::vector<uint64_t>{0, 1, 2, 3}));
  EXPECT_EQ(shard.provenance.source_doc, (std::vector<int64_t>{10, 10, 11}));
  EXPECT_EQ(shard.provenance.method, (std::vector<uint8_t>{0, 0, 0}));
  EXPECT_EQ(shard.provenance.method_names, kMethodCodes);
  EXPECT_EQ(stats.written, 3u);
  EXPECT_EQ(stats.identical, 1u);
  EXPECT_EQ(stats.duplicate, 1u);
  // take() starts a new shard.
  EXPECT_EQ(sink.take().numDocs(), 0u);
}

TEST(AugmentMethod, NamesAndFixedCodes) {
  EXPECT_EQ(parseMethod("backtranslate"), Method::kBacktranslate);
  EXPECT_EQ(parseMethod("perturb"), Method::kPerturb);
  EXPECT_EQ(parseMethod("fgsm"), Method::kFgsm);
  EXPECT_EQ(parseMethod("eda"), std::nullopt);
  EXPECT_EQ(methodName(Method::kPerturb), "perturb");
  EXPECT_STREQ(kMethodCodes, "0=backtranslate,1=perturb,2=fgsm");
}

}  // namespace
}  // namespace kdgrid::augment
