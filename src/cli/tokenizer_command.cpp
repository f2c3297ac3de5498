// `kdgrid tokenizer`: train a byte-level BPE tokenizer on text files and write it as JSON.
// Rank 0 does the work; the verdict (exit code and message) is broadcast so every rank of an
// mpirun job exits the same way.
#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>

#include "cli/commands.h"
#include "core/log.h"
#include "data/input_files.h"
#include "data/tokenizer.h"

namespace kdgrid {

namespace {

struct TokenizerOptions {
  std::vector<std::string> input;
  int64_t vocab_size = 0;  // signed, so that a negative value is reported, not wrapped
  std::string out;

  po::options_description describe() {
    po::options_description o("Tokenizer");
    // clang-format off
    o.add_options()
        ("input", po::value(&input)->multitoken()->required()->value_name("PATH..."),
         "text files, or directories (every regular file in them, by name)")
        ("vocab-size", po::value(&vocab_size)->required()->value_name("N"),
         "ids in the vocabulary: 256 byte tokens + merges + 1 end-of-text token")
        ("out", po::value(&out)->required()->value_name("FILE"), "tokenizer JSON to write");
    // clang-format on
    return o;
  }

  void validate() const {
    KDGRID_OPTION_CHECK(vocab_size >= kMinVocabSize && vocab_size <= kMaxVocabSize,
                        "--vocab-size {} is outside [{}, {}] (256 byte tokens + merges + one "
                        "end-of-text token)",
                        vocab_size, kMinVocabSize, kMaxVocabSize);
    KDGRID_OPTION_CHECK(!out.empty(), "--out must name a file");
  }
};

struct Outcome {
  int code = kExitOk;
  std::string message;
};

Outcome trainAndSave(const TokenizerOptions& opt) {
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
  return {};
}

}  // namespace

int runTokenizer(const CommandLine& cmd) {
  TokenizerOptions opt;
  po::variables_map vm;
  if (!parseOptions(cmd, opt.describe(), vm)) return kExitOk;
  opt.validate();

  Outcome outcome;
  std::exception_ptr error;
  if (worldRank() == 0) {
    try {
      outcome = trainAndSave(opt);
    } catch (const Error& e) {
      outcome = {e.exitCode(), e.what()};
      error = std::current_exception();
    } catch (const std::exception& e) {
      outcome = {kExitFailure, e.what()};
      error = std::current_exception();
    }
  }
  // Every rank learns the verdict: a usage error (bad input file, too large a vocabulary)
  // then ends all ranks cleanly with exit 2, reported once by rank 0.
  int code = outcome.code;
  KDGRID_MPI(MPI_Bcast(&code, 1, MPI_INT, 0, MPI_COMM_WORLD));
  if (code == kExitOk) return kExitOk;
  int length = static_cast<int>(outcome.message.size());
  KDGRID_MPI(MPI_Bcast(&length, 1, MPI_INT, 0, MPI_COMM_WORLD));
  outcome.message.resize(length);
  KDGRID_MPI(MPI_Bcast(outcome.message.data(), length, MPI_CHAR, 0, MPI_COMM_WORLD));
  if (code == kExitUsage) throw OptionError(outcome.message);
  // Rank 0 rethrows (main() reports and aborts); the other ranks wait for that abort.
  if (error) std::rethrow_exception(error);
  return code;
}

}  // namespace kdgrid
