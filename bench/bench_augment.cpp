// Perturbation benchmark: EDA sentences per second on one core.
//   bench_augment [--num-aug N] [--wordnet-dir DIR] FILE...
// Splits the files into documents at blank lines (as `prepare` does) and sentences (as
// `augment` does), loads WordNet once (timed apart), then perturbs every document N times on
// this thread with the default rates (0.1 each), three passes. Prints, per pass, perturbed
// sentences per wall-clock second and per CPU second of this thread (the figure that other
// load on the machine disturbs least), and input MB/s.
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "augment/perturb.h"
#include "augment/wordnet.h"
#include "data/documents.h"
#include "data/file_util.h"
#include "src/core/mpi_session.h"

namespace {

double threadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace kdgrid;
  using namespace kdgrid::augment;
  MpiSession mpi(&argc, &argv);
  PerturbConfig config;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--num-aug") && i + 1 < argc) {
      config.num_aug = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--wordnet-dir") && i + 1 < argc) {
      config.wordnet_dir = argv[++i];
    } else {
      files.push_back(argv[i]);
    }
  }
  if (files.empty() || config.num_aug < 1) {
    std::fprintf(stderr, "usage: bench_augment [--num-aug N] [--wordnet-dir DIR] FILE...\n");
    return 2;
  }
  std::vector<std::unique_ptr<const std::string>> texts;
  std::vector<std::string_view> docs;
  uint64_t bytes = 0;
  for (const std::string& f : files) {
    texts.push_back(std::make_unique<const std::string>(readWholeFile(f, "input file")));
    for (std::string_view doc : splitDocuments(*texts.back())) docs.push_back(doc);
    bytes += texts.back()->size();
  }

  const auto load_start = std::chrono::steady_clock::now();
  const auto wordnet = WordNet::load(config.wordnet_dir);
  std::printf("WordNet load: %.3f s (%zu lemmas, %zu synsets, %zu distinct members)\n",
              secondsSince(load_start), wordnet->numLemmas(), wordnet->numSynsets(),
              wordnet->numWords());

  SentencePerturber perturber(*wordnet, config.rates);
  for (int pass = 0; pass < 3; ++pass) {
    EdaCounts counts;
    uint64_t out_bytes = 0;
    const auto start = std::chrono::steady_clock::now();
    const double cpu_start = threadCpuSeconds();
    for (size_t d = 0; d < docs.size(); ++d) {
      for (const std::string& v : perturbDocument(docs[d], d, config, perturber, counts)) {
        out_bytes += v.size();
      }
    }
    const double wall = secondsSince(start), cpu = threadCpuSeconds() - cpu_start;
    std::printf(
        "pass %d: %zu documents, %llu sentences perturbed (%d variants of %llu), %llu words: "
        "%.0f sentences/s wall, %.0f sentences per CPU-second, %.2f MB/s of input, %.1f MB out\n",
        pass, docs.size(), static_cast<unsigned long long>(counts.sentences), config.num_aug,
        static_cast<unsigned long long>(counts.sentences / config.num_aug),
        static_cast<unsigned long long>(counts.words), counts.sentences / wall,
        counts.sentences / cpu, bytes * config.num_aug / 1e6 / wall, out_bytes / 1e6);
  }
  return 0;
}
