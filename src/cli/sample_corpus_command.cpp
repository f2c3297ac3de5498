// `kdgrid sample-corpus`: writes the built-in English sample corpus (data/sample_corpus.h).
#include <cmath>
#include <cstdio>

#include "data/sample_corpus.h"
#include "src/cli/commands.h"
#include "src/core/log.h"

namespace kdgrid {

int runSampleCorpus(const CommandLine& cmd) {
  SampleCorpusOptions options;
  double max_mb = 5.0;
  po::options_description o("sample-corpus");
  o.add_options()("out", po::value(&options.out)->required()->value_name("FILE"),
                  "output text file (documents separated by blank lines)")(
      "max-mb", valueWithDefault(&max_mb)->value_name("N"),
      "upper bound on the file size in MB (10^6 bytes)")(
      "fortunes-dir", po::value(&options.fortunes_dir)->default_value(options.fortunes_dir),
      "fortune files (Debian packages fortunes, fortunes-min)")(
      "wordnet-dir", po::value(&options.wordnet_dir)->default_value(options.wordnet_dir),
      "WordNet 3.0 data files (Debian package wordnet-base)");
  po::variables_map vm;
  if (!parseOptions(cmd, o, vm)) return kExitOk;
  KDGRID_OPTION_CHECK(std::isfinite(max_mb) && max_mb > 0 && max_mb <= 1e6,
                      "--max-mb must be a positive number of MB (at most 1e6), got {}", max_mb);
  options.max_bytes = static_cast<uint64_t>(max_mb * 1e6);

  // A data command: one file, so rank 0 writes it and the other ranks have nothing to do.
  if (worldRank() != 0) return kExitOk;
  const SampleCorpusStats s = buildSampleCorpus(options);
  std::printf(
      "sample-corpus: wrote %s: %llu bytes, %llu documents (%llu fortunes from %llu files, "
      "%llu WordNet documents of %llu glosses)%s\n",
      options.out.c_str(), static_cast<unsigned long long>(s.bytes),
      static_cast<unsigned long long>(s.documents),
      static_cast<unsigned long long>(s.fortune_documents),
      static_cast<unsigned long long>(s.fortune_files),
      static_cast<unsigned long long>(s.wordnet_documents),
      static_cast<unsigned long long>(s.wordnet_glosses),
      s.truncated ? ", stopped at --max-mb" : "");
  return kExitOk;
}

}  // namespace kdgrid
