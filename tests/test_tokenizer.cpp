// Byte-level BPE tokenizer: GPT-2 pre-tokenisation, exact round trips on arbitrary bytes,
// training against a naive reference trainer, encoding against GPT-2's own bpe() algorithm,
// file round trips and errors, GPT-2 vocab.json/merges.txt interchange.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "data/byte_unicode.h"
#include "data/merge_table.h"
#include "data/tokenizer.h"
#include "src/core/check.h"
#include "tests/test_util.h"

namespace kdgrid {
namespace {

using Json = nlohmann::json;
using Ids = std::vector<uint32_t>;

void writeFile(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Deterministic pseudo-English with numbers, punctuation, contractions, some non-ASCII
// words and blank lines (std::mt19937 is specified exactly; `% n` avoids the unspecified
// distributions).
std::string sampleCorpus(size_t n_words, uint32_t seed) {
  static const char* kWords[] = {
      "the", "a", "of", "and", "to", "in", "is", "that", "it", "was", "for", "on", "are", "with",
      "they", "be", "at", "one", "have", "this", "from", "or", "had", "by", "word", "but",
      "what", "some", "we", "can", "out", "other", "were", "all", "there", "when", "up", "use",
      "your", "how", "said", "an", "each", "she", "which", "do", "their", "time", "if", "will",
      "way", "about", "many", "then", "them", "write", "would", "like", "so", "these", "her",
      "long", "make", "thing", "see", "him", "two", "has", "look", "more", "day", "could",
      "go", "come", "did", "number", "sound", "no", "most", "people", "my", "over", "know",
      "water", "than", "call", "first", "who", "may", "down", "side", "been", "now", "find",
      "café", "naïve", "東京", "straße", "don't", "it's", "we're", "I'll", "1984", "3.14",
      "😀", "e-mail", "(see", "below)", "\"quoted\"", "x86_64"};
  static const char* kSyllables[] = {"ka", "ter", "mon", "lis", "pra", "ven", "do", "qui",
                                     "sel", "ar", "tho", "nex", "bu", "rin", "gal", "phe"};
  std::mt19937 rng(seed);
  std::string text;
  for (size_t i = 0; i < n_words; ++i) {
    if (rng() % 4 == 0) {  // an invented word: many distinct pieces, so many merges
      for (uint32_t k = 2 + rng() % 3; k > 0; --k) {
        text += kSyllables[rng() % std::size(kSyllables)];
      }
    } else {
      text += kWords[rng() % std::size(kWords)];
    }
    const uint32_t r = rng() % 100;
    text += r < 80 ? " " : r < 88 ? ", " : r < 94 ? ". " : r < 98 ? ".\n" : ".\n\n";
  }
  return text;
}

// Random byte strings built from fragments that stress the pre-tokeniser and BPE: invalid
// UTF-8, NULs, long whitespace runs, emoji, CJK, long single pieces (> the short-piece limit).
std::string randomBytes(std::mt19937& rng) {
  static const std::string kFragments[] = {
      "the", " the", "and", " of", "'s", "'ll", "  ", "\n", "\r\n", "\t", std::string(1, '\0'),
      "\xff", "\xfe\xfe", "\xc3", "\xe6\xbc", "\xed\xa0\x80", "\xc0\xaf", "😀", "👍🏽", "漢字",
      "東京", "Ünïcödé", "١٢٣", "e\xcc\x81", "3.14159", "!!!", "\u00a0", "\u2028", "\u3000"};
  std::string s;
  const uint32_t parts = rng() % 40;
  for (uint32_t p = 0; p < parts; ++p) {
    switch (rng() % 6) {
      case 0:  // raw random bytes
        for (uint32_t k = rng() % 8; k > 0; --k) s.push_back(static_cast<char>(rng() % 256));
        break;
      case 1:  // a long whitespace run
        s.append(1 + rng() % 300, " \n\t"[rng() % 3]);
        break;
      case 2: {  // a long run of one word without spaces: one long piece
        const char* word = rng() % 2 ? "the" : "a";
        for (uint32_t k = 20 + rng() % 40; k > 0; --k) s += word;
        break;
      }
      default:
        s += kFragments[rng() % std::size(kFragments)];
    }
  }
  return s;
}

// A tokenizer trained once on sampleCorpus, shared by the tests that only need one.
class TrainedTokenizer : public ::testing::Test {
 protected:
  static constexpr uint32_t kVocab = 700;
  static void SetUpTestSuite() {
    dir_ = new test::TempDir("kdgrid-tok");
    writeFile(*dir_ / "corpus.txt", sampleCorpus(20000, 1));
    tok_ = new Tokenizer(Tokenizer::train({*dir_ / "corpus.txt"}, kVocab));
  }
  static void TearDownTestSuite() {
    delete tok_;
    delete dir_;
  }
  static test::TempDir* dir_;
  static Tokenizer* tok_;
};
test::TempDir* TrainedTokenizer::dir_ = nullptr;
Tokenizer* TrainedTokenizer::tok_ = nullptr;

// ---------------------------------------------------------------- byte-to-unicode mapping

TEST(ByteUnicode, MatchesGpt2AndIsABijection) {
  EXPECT_EQ(bytesToGpt2(" "), "Ġ");
  EXPECT_EQ(bytesToGpt2("\n"), "Ċ");
  EXPECT_EQ(bytesToGpt2(std::string(1, '\0')), "Ā");
  EXPECT_EQ(bytesToGpt2("\xad"), "Ń");  // soft hyphen: the last of the 68 remapped bytes
  EXPECT_EQ(bytesToGpt2("\xa0"), "ł");
  EXPECT_EQ(bytesToGpt2("Hi!"), "Hi!");
  EXPECT_EQ(bytesToGpt2("\xe9"), "é");  // printable Latin-1 bytes stand for themselves
  std::set<std::string> seen;
  for (int b = 0; b < 256; ++b) {
    const std::string byte(1, static_cast<char>(b));
    const std::string form = bytesToGpt2(byte);
    EXPECT_TRUE(seen.insert(form).second) << b;
    EXPECT_EQ(gpt2ToBytes(form), byte) << b;
  }
  EXPECT_FALSE(gpt2ToBytes("€").has_value());      // outside the mapping
  EXPECT_FALSE(gpt2ToBytes(" ").has_value());      // a raw space is not in the mapping
  EXPECT_FALSE(gpt2ToBytes("\xc4").has_value());   // truncated UTF-8
}

// ---------------------------------------------------------------- merge table

TEST(MergeTable, FindsWhatWasInsertedWhileGrowing) {
  MergeTable table;  // no reservation: grows many times
  std::map<std::pair<uint32_t, uint32_t>, uint32_t> reference;
  std::mt19937 rng(1);
  for (uint32_t i = 0; reference.size() < 20000; ++i) {
    // Small ids collide often in the low bits, as real merges do.
    const uint32_t left = rng() % 300, right = rng() % 5000;
    const bool fresh = reference.emplace(std::make_pair(left, right), i).second;
    ASSERT_EQ(table.insert(left, right, {i, i + 7}), fresh);
  }
  EXPECT_EQ(table.size(), reference.size());
  for (const auto& [pair, rank] : reference) {
    const MergeTable::Rule* rule = table.find(pair.first, pair.second);
    ASSERT_NE(rule, nullptr);
    EXPECT_EQ(rule->rank, rank);
    EXPECT_EQ(rule->result, rank + 7);
  }
  size_t absent = 0;
  for (uint32_t left = 0; left < 300; ++left) {
    for (uint32_t right = 5000; right < 5010; ++right) absent += table.find(left, right) == nullptr;
  }
  EXPECT_EQ(absent, 3000u);
  EXPECT_EQ(table.find(0x7fffffff, 0x7fffffff), nullptr);
}

// ---------------------------------------------------------------- pre-tokenisation

std::vector<std::string> piecesOf(const Tokenizer& tok, std::string_view text) {
  std::vector<std::string> out;
  for (auto p : tok.pieces(text)) out.emplace_back(p);
  return out;
}

using Pieces = std::vector<std::string>;

TEST_F(TrainedTokenizer, SplitsLikeGpt2) {
  // Expected pieces worked out from GPT-2's pattern: a space attaches to the following word;
  // of a whitespace run before a word, the last space goes with the word (\s+(?!\S)).
  EXPECT_EQ(piecesOf(*tok_, "Hello world's 123  foo"),
            (Pieces{"Hello", " world", "'s", " 123", " ", " foo"}));
  EXPECT_EQ(piecesOf(*tok_, "I'm   here\n\n"), (Pieces{"I", "'m", "  ", " here", "\n\n"}));
  EXPECT_EQ(piecesOf(*tok_, "don't IT'S"), (Pieces{"don", "'t", " IT", "'", "S"}));
  EXPECT_EQ(piecesOf(*tok_, "pi=3.14!"), (Pieces{"pi", "=", "3", ".", "14", "!"}));
  EXPECT_EQ(piecesOf(*tok_, "a\tb"), (Pieces{"a", "\t", "b"}));
  EXPECT_EQ(piecesOf(*tok_, "Straße 東京 ١٢٣ x"),
            (Pieces{"Straße", " 東京", " ١٢٣", " x"}));               // Unicode L and N
  EXPECT_EQ(piecesOf(*tok_, "ok 👍👍!"), (Pieces{"ok", " 👍👍!"}));  // symbols run together
  EXPECT_EQ(piecesOf(*tok_, "we've they'd you'll"),
            (Pieces{"we", "'ve", " they", "'d", " you", "'ll"}));
  // Invalid UTF-8 cannot be matched: it becomes a piece of its own and still round-trips.
  EXPECT_EQ(piecesOf(*tok_, "a\xff\xfe b\xc3"), (Pieces{"a", "\xff\xfe", " b", "\xc3"}));
  EXPECT_TRUE(tok_->pieces("").empty());
}

TEST_F(TrainedTokenizer, PiecesTileAnyInput) {
  std::mt19937 rng(7);
  for (int i = 0; i < 300; ++i) {
    const std::string s = randomBytes(rng);
    std::string joined;
    for (auto p : tok_->pieces(s)) {
      ASSERT_FALSE(p.empty());
      joined += p;
    }
    ASSERT_EQ(joined, s) << "case " << i;
  }
}

// ---------------------------------------------------------------- round trips

TEST_F(TrainedTokenizer, RoundTripsRandomBytes) {
  std::mt19937 rng(11);
  size_t long_inputs = 0;
  for (int i = 0; i < 500; ++i) {
    const std::string s = randomBytes(rng);
    const Ids ids = tok_->encode(s);
    for (uint32_t id : ids) {
      ASSERT_LT(id, tok_->vocabSize());
      ASSERT_NE(id, tok_->eotToken());
    }
    ASSERT_EQ(tok_->decode(ids), s) << "case " << i;
    long_inputs += s.size() > 1000;
  }
  EXPECT_GT(long_inputs, 10u);  // the generator does reach the long-piece path
  // Every single byte value on its own.
  for (int b = 0; b < 256; ++b) {
    const std::string s(1, static_cast<char>(b));
    EXPECT_EQ(tok_->decode(tok_->encode(s)), s) << b;
  }
}

TEST_F(TrainedTokenizer, RoundTripsTextFilesAndCompresses) {
  for (const char* rel : {"README.md", "data/tokenizer.h", "data/pretokenizer.cpp"}) {
    const std::string text = readFile(test::sourceDir() + "/" + rel);
    ASSERT_FALSE(text.empty()) << rel;
    const Ids ids = tok_->encode(text);
    EXPECT_EQ(tok_->decode(ids), text) << rel;
    EXPECT_LT(ids.size(), text.size()) << rel;  // merges do apply
  }
}

TEST_F(TrainedTokenizer, EncodesConcurrently) {
  // One shared tokenizer, several threads (the header promises this for prepare).
  std::mt19937 rng(13);
  std::vector<std::string> texts;
  for (int i = 0; i < 64; ++i) texts.push_back(sampleCorpus(300, i) + randomBytes(rng));
  std::vector<Ids> expected;
  for (const auto& t : texts) expected.push_back(tok_->encode(t));
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 5; ++round) {
        for (size_t i = 0; i < texts.size(); ++i) {
          mismatches[t] += tok_->encode(texts[i]) != expected[i];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

TEST_F(TrainedTokenizer, EndOfTextDecodesToNothingAndBadIdsAreErrors) {
  const Ids ids = tok_->encode("the end");
  Ids with_eot = ids;
  with_eot.push_back(tok_->eotToken());
  EXPECT_EQ(tok_->decode(with_eot), "the end");
  EXPECT_EQ(tok_->tokenBytes(tok_->eotToken()), "<|endoftext|>");
  // The literal spelling is ordinary text: it never becomes the EOT id.
  for (uint32_t id : tok_->encode("<|endoftext|>")) EXPECT_NE(id, tok_->eotToken());
  const Ids bad = {tok_->vocabSize()};
  EXPECT_THROW(tok_->decode(bad), UsageError);
}

// ---------------------------------------------------------------- encode vs GPT-2's bpe()

// (left bytes, right bytes) -> merge rank.
using RankMap = std::map<std::pair<std::string, std::string>, size_t>;

// GPT-2's encoder.py bpe(): repeatedly take the adjacent pair of lowest rank and merge all
// its occurrences left to right. Works on byte strings.
std::vector<std::string> gpt2Bpe(const std::string& piece, const RankMap& ranks) {
  std::vector<std::string> word;
  for (char c : piece) word.emplace_back(1, c);
  while (word.size() > 1) {
    size_t best = SIZE_MAX;
    std::pair<std::string, std::string> bigram;
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      auto it = ranks.find({word[i], word[i + 1]});
      if (it != ranks.end() && it->second < best) {
        best = it->second;
        bigram = it->first;
      }
    }
    if (best == SIZE_MAX) break;
    std::vector<std::string> merged;
    for (size_t i = 0; i < word.size();) {
      if (i + 1 < word.size() && word[i] == bigram.first && word[i + 1] == bigram.second) {
        merged.push_back(word[i] + word[i + 1]);
        i += 2;
      } else {
        merged.push_back(word[i++]);
      }
    }
    word = std::move(merged);
  }
  return word;
}

TEST_F(TrainedTokenizer, EncodesLikeGpt2sBpeAlgorithm) {
  const Json j = Json::parse(tok_->canonicalJson());
  std::map<std::string, uint32_t> id_of;  // bytes -> id
  for (uint32_t id = 0; id < j["vocab"].size(); ++id) {
    if (id != tok_->eotToken()) id_of[*gpt2ToBytes(j["vocab"][id].get<std::string>())] = id;
  }
  RankMap ranks;
  for (size_t r = 0; r < j["merges"].size(); ++r) {
    const std::string m = j["merges"][r];
    const size_t sp = m.find(' ');
    ranks[{*gpt2ToBytes(m.substr(0, sp)), *gpt2ToBytes(m.substr(sp + 1))}] = r;
  }
  std::mt19937 rng(5);
  std::vector<std::string> inputs = {sampleCorpus(3000, 99)};
  for (int i = 0; i < 200; ++i) inputs.push_back(randomBytes(rng));
  for (const auto& text : inputs) {
    Ids expected;
    for (auto piece : tok_->pieces(text)) {
      for (const auto& t : gpt2Bpe(std::string(piece), ranks)) expected.push_back(id_of.at(t));
    }
    ASSERT_EQ(tok_->encode(text), expected);
  }
}

// ---------------------------------------------------------------- training

TEST(TokenizerTraining, HandComputedMerges) {
  // Pieces: "aaab" x2, "aab" x1 (single "\n" pieces have no pairs).
  // 1. counts aa=5, ab=3            -> (a,a) = 256 "aa"
  // 2. (aa,a)=2, (a,b)=2, (aa,b)=1  -> tie, lowest pair (97,98) -> (a,b) = 257 "ab"
  // 3. (aa,ab)=2, (aa,b)=1          -> 258 "aaab";  4. (aa,b)=1 -> 259 "aab"; 260 = EOT.
  test::TempDir dir;
  writeFile(dir / "t.txt", "aaab\naaab\naab\n");
  const Tokenizer tok = Tokenizer::train({dir / "t.txt"}, 261);
  EXPECT_EQ(tok.vocabSize(), 261u);
  EXPECT_EQ(tok.eotToken(), 260u);
  ASSERT_EQ(tok.numMerges(), 4u);
  EXPECT_EQ(tok.tokenBytes(256), "aa");
  EXPECT_EQ(tok.tokenBytes(257), "ab");
  EXPECT_EQ(tok.tokenBytes(258), "aaab");
  EXPECT_EQ(tok.tokenBytes(259), "aab");
  const Json j = Json::parse(tok.canonicalJson());
  EXPECT_EQ(j["merges"], Json::parse(R"(["a a", "a b", "aa ab", "aa b"])"));
  EXPECT_EQ(tok.encode("aaab"), (Ids{258}));
  // a a a a b: (a,a) leftmost -> aa a a b -> aa aa b -> (aa,b) -> aa aab.
  EXPECT_EQ(tok.encode("aaaab"), (Ids{256, 259}));
  EXPECT_EQ(tok.encode("aab\naaab ba"), (Ids{259, 10, 258, 32, 98, 97}));
  // Runs of a: pairs (a,a) overlap and the leftmost merges first. 11 and 12 bytes take the
  // short-piece path, 101 and 102 the heap path.
  for (size_t run : {11, 12, 101, 102}) {
    const Ids aa(run / 2, 256);
    Ids expected = aa;  // odd: aa .. aa a
    if (run % 2) expected.push_back(97);
    EXPECT_EQ(tok.encode(std::string(run, 'a')), expected) << run;
    // Followed by b. Even: aa .. aa b -> (aa,b) -> aa .. aab.
    // Odd: aa .. aa a b -> (a,b) -> aa .. aa ab -> (aa,ab) -> aa .. aaab.
    expected.assign(aa.begin(), aa.end() - 1);
    expected.push_back(run % 2 ? 258 : 259);
    EXPECT_EQ(tok.encode(std::string(run, 'a') + "b"), expected) << run;
  }
  // Every piece is one token after 4 merges: a larger vocabulary cannot be reached.
  test::expectUsageError([&] { Tokenizer::train({dir / "t.txt"}, 262); }, {"--vocab-size"});
  // The smallest vocabulary: bytes + EOT, no merges.
  const Tokenizer bytes_only = Tokenizer::train({dir / "t.txt"}, 257);
  EXPECT_EQ(bytes_only.numMerges(), 0u);
  EXPECT_EQ(bytes_only.encode("ab"), (Ids{97, 98}));
}

TEST(TokenizerTraining, RejectsBadArguments) {
  test::TempDir dir;
  writeFile(dir / "t.txt", "hello hello\n");
  test::expectUsageError([&] { Tokenizer::train({dir / "t.txt"}, 256); }, {"--vocab-size"});
  test::expectUsageError([&] { Tokenizer::train({dir / "missing.txt"}, 300); }, {"missing.txt"});
}

// Naive BPE training: recount every pair over every word at each step.
struct ReferenceBpe {
  std::vector<std::string> tokens;
  std::vector<std::pair<uint32_t, uint32_t>> merges;
};

ReferenceBpe referenceTrain(const Tokenizer& pretok, const std::string& text, uint32_t vocab) {
  std::map<std::string, int64_t> piece_counts;
  for (auto p : pretok.pieces(text)) ++piece_counts[std::string(p)];
  std::vector<std::pair<Ids, int64_t>> words;
  for (const auto& [p, c] : piece_counts) {
    Ids w;
    for (unsigned char b : p) w.push_back(b);
    words.emplace_back(w, c);
  }
  ReferenceBpe ref;
  for (int b = 0; b < 256; ++b) ref.tokens.emplace_back(1, static_cast<char>(b));
  while (ref.tokens.size() < vocab - 1) {
    std::map<std::pair<uint32_t, uint32_t>, int64_t> counts;  // ordered: ties -> lowest pair
    for (const auto& [w, c] : words) {
      for (size_t i = 0; i + 1 < w.size(); ++i) counts[{w[i], w[i + 1]}] += c;
    }
    if (counts.empty()) break;
    auto best = counts.begin();
    for (auto it = counts.begin(); it != counts.end(); ++it) {
      if (it->second > best->second) best = it;
    }
    const auto [l, r] = best->first;
    const std::string bytes = ref.tokens[l] + ref.tokens[r];
    auto found = std::find(ref.tokens.begin(), ref.tokens.end(), bytes);
    const auto id = static_cast<uint32_t>(found - ref.tokens.begin());
    if (found == ref.tokens.end()) ref.tokens.push_back(bytes);
    ref.merges.emplace_back(l, r);
    for (auto& [w, c] : words) {
      Ids out;
      for (size_t i = 0; i < w.size();) {
        if (i + 1 < w.size() && w[i] == l && w[i + 1] == r) {
          out.push_back(id);
          i += 2;
        } else {
          out.push_back(w[i++]);
        }
      }
      w = std::move(out);
    }
  }
  return ref;
}

TEST(TokenizerTraining, MatchesNaiveReferenceTrainer) {
  test::TempDir dir;
  std::mt19937 rng(3);
  std::string text = sampleCorpus(4000, 2);
  for (int i = 0; i < 30; ++i) text += randomBytes(rng);  // odd bytes and long pieces too
  writeFile(dir / "c.txt", text);
  constexpr uint32_t kVocab = 520;
  const Tokenizer tok = Tokenizer::train({dir / "c.txt"}, kVocab);
  const ReferenceBpe ref = referenceTrain(tok, text, kVocab);
  ASSERT_EQ(ref.tokens.size(), kVocab - 1);
  for (uint32_t id = 0; id + 1 < kVocab; ++id) ASSERT_EQ(tok.tokenBytes(id), ref.tokens[id]) << id;
  const Json merges = Json::parse(tok.canonicalJson())["merges"];
  ASSERT_EQ(merges.size(), ref.merges.size());
  for (size_t r = 0; r < ref.merges.size(); ++r) {
    const auto [l, rt] = ref.merges[r];
    EXPECT_EQ(merges[r], bytesToGpt2(ref.tokens[l]) + " " + bytesToGpt2(ref.tokens[rt])) << r;
  }
}

TEST_F(TrainedTokenizer, VocabularyIsExactAndTrainingDeterministic) {
  EXPECT_EQ(tok_->vocabSize(), kVocab);
  EXPECT_EQ(tok_->eotToken(), kVocab - 1);
  EXPECT_GE(tok_->numMerges(), kVocab - 257);
  const Json j = Json::parse(tok_->canonicalJson());
  EXPECT_EQ(j["vocab_size"], kVocab);
  EXPECT_EQ(j["vocab"].size(), kVocab);
  std::set<std::string> unique(j["vocab"].begin(), j["vocab"].end());
  EXPECT_EQ(unique.size(), kVocab);
  const Tokenizer again = Tokenizer::train({*dir_ / "corpus.txt"}, kVocab);
  EXPECT_EQ(again.canonicalJson(), tok_->canonicalJson());
  EXPECT_EQ(again.sha256(), tok_->sha256());
  EXPECT_EQ(tok_->sha256().size(), 64u);
  // A different corpus gives a different identity.
  writeFile(*dir_ / "other.txt", sampleCorpus(20000, 2));
  EXPECT_NE(Tokenizer::train({*dir_ / "other.txt"}, kVocab).sha256(), tok_->sha256());
}

TEST(TokenizerTraining, SeveralFilesArePreTokenisedSeparately) {
  test::TempDir dir;
  writeFile(dir / "a.txt", "ab");
  writeFile(dir / "b.txt", "ab");
  // Concatenated, "abab" would be one piece with pair (b,a); file by file it never occurs.
  const Tokenizer tok = Tokenizer::train({dir / "a.txt", dir / "b.txt"}, 258);
  EXPECT_EQ(tok.tokenBytes(256), "ab");
  test::expectUsageError(
      [&] {
        Tokenizer::train({dir / "a.txt", dir / "b.txt"}, 259);
      },
      {"--vocab-size"});
}

// ---------------------------------------------------------------- files

TEST_F(TrainedTokenizer, SaveLoadRoundTrip) {
  const std::string path = *dir_ / "tok.json";
  tok_->save(path);
  EXPECT_EQ(readFile(path), tok_->canonicalJson());
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  const Tokenizer loaded = Tokenizer::load(path);
  EXPECT_EQ(loaded.canonicalJson(), tok_->canonicalJson());
  EXPECT_EQ(loaded.sha256(), tok_->sha256());
  EXPECT_EQ(loaded.vocabSize(), tok_->vocabSize());
  EXPECT_EQ(loaded.eotToken(), tok_->eotToken());
  const std::string text = sampleCorpus(500, 8) + "\xff 😀";
  EXPECT_EQ(loaded.encode(text), tok_->encode(text));
  // The identity hashes the content, not the formatting of the file.
  writeFile(*dir_ / "compact.json", Json::parse(readFile(path)).dump());
  EXPECT_EQ(Tokenizer::load(*dir_ / "compact.json").sha256(), tok_->sha256());
}

TEST_F(TrainedTokenizer, CorruptFilesAreUsageErrorsNamingTheFile) {
  const std::string good_text = tok_->canonicalJson();
  const Json good = Json::parse(good_text);
  struct Case {
    std::string name;
    std::string content;
    std::string needle;  // part of the message besides the file name
  };
  auto edited = [&](auto&& edit) {
    Json j = good;
    edit(j);
    return j.dump();
  };
  const std::vector<Case> cases = {
      {"empty", "", "JSON"},
      {"garbage", "not json at all", "JSON"},
      {"truncated", good_text.substr(0, good_text.size() / 2), "JSON"},
      {"array", "[1, 2]", "object"},
      {"version", edited([](Json& j) { j["version"] = 2; }), "version"},
      {"version_string", edited([](Json& j) { j["version"] = "1"; }), "version"},
      {"format", edited([](Json& j) { j["format"] = "other"; }), "format"},
      {"no_merges", edited([](Json& j) { j.erase("merges"); }), "merges"},
      {"vocab_size", edited([](Json& j) { j["vocab_size"] = kVocab + 1; }), "vocab"},
      {"negative_size", edited([](Json& j) { j["vocab_size"] = -5; }), "vocab_size"},
      {"eot_range", edited([](Json& j) { j["eot_token"] = kVocab; }), "eot_token"},
      {"pattern", edited([](Json& j) { j["pattern"] = "\\w+"; }), "pattern"},
      {"unknown_merge", edited([](Json& j) { j["merges"].push_back("zzq qqz"); }), "merge"},
      {"bad_merge_line", edited([](Json& j) { j["merges"][3] = "abc"; }), "merge 3"},
      {"dup_merge", edited([](Json& j) { j["merges"].push_back(j["merges"][0]); }), "twice"},
      {"missing_byte", edited([](Json& j) { j["vocab"][65] = "Ġ"; }), "token"},
      {"not_gpt2_form", edited([](Json& j) { j["vocab"][300] = "€"; }), "vocab entry 300"},
      {"vocab_not_string", edited([](Json& j) { j["vocab"][3] = 3; }), "vocab entry 3"},
      {"orphan_token", edited([](Json& j) { j["merges"].erase(j["merges"].size() - 1); }),
       "no merge"},
  };
  for (const auto& c : cases) {
    const std::string path = *dir_ / ("bad_" + c.name + ".json");
    writeFile(path, c.content);
    test::expectUsageError([&] { Tokenizer::load(path); }, {path, c.needle});
  }
  test::expectUsageError([&] { Tokenizer::load(*dir_ / "nope.json"); }, {"nope.json"});
  test::expectUsageError([&] { Tokenizer::load(dir_->path()); }, {dir_->path()});
}

// ---------------------------------------------------------------- GPT-2 interchange

TEST_F(TrainedTokenizer, Gpt2FilesRoundTrip) {
  const std::string dir = *dir_ / "gpt2";
  tok_->writeGpt2Files(dir);
  const std::string merges = readFile(dir + "/merges.txt");
  EXPECT_TRUE(merges.starts_with("#version: 0.2\n"));
  const Json vocab = Json::parse(readFile(dir + "/vocab.json"));
  EXPECT_EQ(vocab.size(), tok_->vocabSize());
  EXPECT_EQ(vocab["<|endoftext|>"], tok_->eotToken());
  EXPECT_EQ(vocab["Ġ"], 32);  // our own ids: byte b is id b
  const Tokenizer back = Tokenizer::fromGpt2Files(dir + "/vocab.json", dir + "/merges.txt");
  EXPECT_EQ(back.sha256(), tok_->sha256());
}

// A GPT-2-layout tokenizer whose ids follow GPT-2's byte order ('!' = 0, 'a' = 64, 'Ġ' = 220)
// and then get shuffled, with the end-of-text token in the middle: nothing may assume that
// byte b has id b or that EOT is last.
TEST(TokenizerGpt2, ImportsForeignIdOrder) {
  test::TempDir dir;
  std::vector<std::string> spellings;  // GPT-2 byte order first
  for (int b = 0; b < 256; ++b) {
    const bool self = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    if (self) spellings.push_back(bytesToGpt2(std::string(1, static_cast<char>(b))));
  }
  for (int b = 0; b < 256; ++b) {
    const bool self = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    if (!self) spellings.push_back(bytesToGpt2(std::string(1, static_cast<char>(b))));
  }
  ASSERT_EQ(spellings[64], "a");
  ASSERT_EQ(spellings[220], "Ġ");
  // Two merges reach "abc" ("ab c" and "a bc"), which a vocab.json keyed by spelling allows.
  const std::vector<std::string> merge_lines = {"Ġ a", "a b", "b c", "ab c", "a bc", "Ġa bc"};
  for (const char* t : {"Ġa", "ab", "bc", "abc", "Ġabc"}) spellings.push_back(t);
  spellings.push_back("<|endoftext|>");
  std::vector<uint32_t> ids(spellings.size());
  for (uint32_t i = 0; i < ids.size(); ++i) ids[i] = i;
  std::shuffle(ids.begin(), ids.end(), std::mt19937(42));
  Json vocab = Json::object();
  std::map<std::string, uint32_t> id_of;
  for (size_t i = 0; i < spellings.size(); ++i) {
    vocab[spellings[i]] = ids[i];
    id_of[spellings[i]] = ids[i];
  }
  writeFile(dir / "vocab.json", vocab.dump());
  std::string merges = "#version: 0.2\n";
  for (const auto& m : merge_lines) merges += m + "\n";
  writeFile(dir / "merges.txt", merges);

  const Tokenizer tok = Tokenizer::fromGpt2Files(dir / "vocab.json", dir / "merges.txt");
  EXPECT_EQ(tok.vocabSize(), 262u);
  EXPECT_EQ(tok.eotToken(), id_of["<|endoftext|>"]);
  EXPECT_NE(tok.eotToken(), 261u);  // shuffled away from the end (seed 42)
  // "abc": (a,b) rank 1 first -> ab c -> (ab,c) rank 3 -> abc.
  EXPECT_EQ(tok.encode("abc"), (Ids{id_of["abc"]}));
  // " abc": (Ġ,a) rank 0 -> Ġa b c -> (b,c) rank 2 -> Ġa bc -> (Ġa,bc) rank 5 -> Ġabc.
  EXPECT_EQ(tok.encode(" abc"), (Ids{id_of["Ġabc"]}));
  EXPECT_EQ(tok.encode("ca!"), (Ids{id_of["c"], id_of["a"], id_of["!"]}));
  std::mt19937 rng(9);
  for (int i = 0; i < 100; ++i) {
    const std::string s = randomBytes(rng);
    ASSERT_EQ(tok.decode(tok.encode(s)), s);
  }
  // Written back out and read again: the same tokenizer.
  tok.writeGpt2Files(dir / "out");
  EXPECT_EQ(Tokenizer::fromGpt2Files(dir / "out/vocab.json", dir / "out/merges.txt").sha256(),
            tok.sha256());
  // Our JSON keeps the foreign ids too.
  tok.save(dir / "tok.json");
  EXPECT_EQ(Tokenizer::load(dir / "tok.json").encode(" abc"), (Ids{id_of["Ġabc"]}));

  // Inconsistent GPT-2 files name the file.
  writeFile(dir / "bad_merges.txt", "#version: 0.2\nx yz\n");
  test::expectUsageError(
      [&] { Tokenizer::fromGpt2Files(dir / "vocab.json", dir / "bad_merges.txt"); },
      {"bad_merges.txt"});
  Json no_eot = vocab;
  no_eot.erase("<|endoftext|>");
  writeFile(dir / "no_eot.json", no_eot.dump());
  test::expectUsageError([&] { Tokenizer::fromGpt2Files(dir / "no_eot.json", dir / "merges.txt"); },
                         {"no_eot.json"});
}

}  // namespace
}  // namespace kdgrid
