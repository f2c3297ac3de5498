// Tokenizer benchmark: training time and single-thread encode throughput.
//   bench_tokenizer VOCAB_SIZE FILE...
// Trains on the files, then encodes their text (and three adversarial inputs of the same
// size: one whitespace run, one letter run, random bytes) and prints one line per figure.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "data/file_util.h"
#include "data/tokenizer.h"
#include "src/core/mpi_session.h"

namespace {

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void measureEncode(const kdgrid::Tokenizer& tok, const char* what, const std::string& text) {
  const auto start = std::chrono::steady_clock::now();
  const std::vector<uint32_t> ids = tok.encode(text);
  const double s = secondsSince(start);
  const bool exact = tok.decode(ids) == text;
  std::printf("encode %-16s %8.2f MB  %8.3f s  %7.2f MB/s  %.2f bytes/token  round-trip %s\n", what,
              text.size() / 1e6, s, text.size() / 1e6 / s,
              static_cast<double>(text.size()) / std::max<size_t>(ids.size(), 1),
              exact ? "exact" : "BROKEN");
}

}  // namespace

int main(int argc, char** argv) {
  kdgrid::MpiSession mpi(&argc, &argv);
  if (argc < 3) {
    std::fprintf(stderr, "usage: bench_tokenizer VOCAB_SIZE FILE...\n");
    return 2;
  }
  const auto vocab = static_cast<uint32_t>(std::strtoul(argv[1], nullptr, 10));
  const std::vector<std::string> files(argv + 2, argv + argc);
  std::string text;
  for (const auto& f : files) text += kdgrid::readWholeFile(f, "input file");

  const auto start = std::chrono::steady_clock::now();
  const kdgrid::Tokenizer tok = kdgrid::Tokenizer::train(files, vocab);
  std::printf("train  vocab %u on %.2f MB: %.3f s (%zu merges)\n", tok.vocabSize(),
              text.size() / 1e6, secondsSince(start), tok.numMerges());

  measureEncode(tok, "input text", text);
  measureEncode(tok, "whitespace run", std::string(text.size(), ' '));
  measureEncode(tok, "letter run", std::string(text.size(), 'e'));
  std::mt19937 rng(1);
  std::string noise(text.size(), '\0');
  for (auto& c : noise) c = static_cast<char>(rng());
  measureEncode(tok, "random bytes", noise);
  return 0;
}
