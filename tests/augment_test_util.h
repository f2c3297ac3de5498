// A small WordNet database written by a test, in the real file format (wndb(5WN)), so that
// perturbation tests know every synonym.
#pragma once

#include <fmt/format.h>

#include <fstream>
#include <string>
#include <vector>

namespace kdgrid::test {

// One noun synset per entry: its members (the first is the "word", the others its synonyms).
// Writes all twelve database files into `dir` (verb, adjective and adverb files empty).
inline void writeFakeWordNet(const std::string& dir,
                             const std::vector<std::vector<std::string>>& synsets) {
  std::ofstream data(dir + "/data.noun"), index(dir + "/index.noun");
  data << "  1 A license header line starts with two spaces.\n";
  index << "  1 A license header line starts with two spaces.\n";
  for (size_t s = 0; s < synsets.size(); ++s) {
    const size_t offset = 1000 + 100 * s;
    std::string line = fmt::format("{:08d} 05 n {:02x}", offset, synsets[s].size());
    for (const std::string& member : synsets[s]) line += " " + member + " 0";
    data << line << " 000 | a made-up synset\n";
    for (const std::string& member : synsets[s]) {
      index << fmt::format("{} n 1 0 1 0 {:08d}\n", member, offset);
    }
  }
  for (const char* name : {"data.verb", "data.adj", "data.adv", "index.verb", "index.adj",
                           "index.adv", "noun.exc", "verb.exc", "adj.exc", "adv.exc"}) {
    std::ofstream(dir + "/" + name);
  }
}

}  // namespace kdgrid::test
