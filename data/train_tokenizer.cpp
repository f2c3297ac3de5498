// The tokenizer pipeline: train a byte-level BPE tokenizer on text files and write it as JSON.
#include "data/train_tokenizer.h"

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "data/input_files.h"
#include "data/tokenizer.h"
#include "src/core/agreement.h"
#include "src/core/log.h"

namespace kdgrid {

po::options_description tokenizerOptions(TokenizerConfig& c) {
  po::options_description o("Tokenizer");
  // clang-format off
  o.add_options()
      ("input", po::value(&c.input)->multitoken()->required()->value_name("PATH..."),
       "text files, or directories (every regular file in them, by name)")
      ("vocab-size", po::value(&c.vocab_size)->required()->value_name("N"),
       "ids in the vocabulary: 256 byte tokens + merges + 1 end-of-text token")
      ("out", po::value(&c.out)->required()->value_name("FILE"), "tokenizer JSON to write");
  // clang-format on
  return o;
}

void TokenizerConfig::validate() const {
  KDGRID_OPTION_CHECK(vocab_size >= kMinVocabSize && vocab_size <= kMaxVocabSize,
                      "--vocab-size {} is outside [{}, {}] (256 byte tokens + merges + one "
                      "end-of-text token)",
                      vocab_size, kMinVocabSize, kMaxVocabSize);
  KDGRID_OPTION_CHECK(!out.empty(), "--out must name a file");
}

namespace {

void trainAndSave(const TokenizerConfig& opt) {
  const auto start = std::chrono::steady_clock::now();
  const std::vector<std::string> files = expandInputPaths(opt.input, "--input");
  uint64_t input_bytes = 0;
  for (const auto& f : files) {
    std::error_code ec;
    input_bytes += std::filesystem::file_size(f, ec);
  }
  log0("tokenizer: {} input files, {:.2f} MB; learning {} tokens", files.size(), input_bytes / 1e6,
       opt.vocab_size - kMinVocabSize);
  auto last_log = std::chrono::steady_clock::now();
  const Tokenizer tok = Tokenizer::train(
      files, static_cast<uint32_t>(opt.vocab_size), [&](size_t done, size_t total) {
        const auto now = std::chrono::steady_clock::now();
        if (done == total || now - last_log >= std::chrono::seconds(2)) {
          log0("tokenizer: {}/{} tokens learned", done, total);
          last_log = now;
        }
      });
  tok.save(opt.out);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("tokenizer: vocab %u (%zu merges, eot %u), %.2f MB input, %.1f s -> %s (sha256 %s)\n",
              tok.vocabSize(), tok.numMerges(), tok.eotToken(), input_bytes / 1e6, seconds,
              opt.out.c_str(), tok.sha256().c_str());
  std::fflush(stdout);
}

}  // namespace

void trainTokenizer(const TokenizerConfig& config) {
  runOnRankZero([&] { trainAndSave(config); });
}

}  // namespace kdgrid
