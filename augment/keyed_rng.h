// A deterministic random stream keyed by (seed, document, variant).
//
// Every random choice of an augmentation is drawn from the stream of the document and variant
// it belongs to, so the output depends on neither the number of ranks nor the number of
// threads nor the order documents are processed in. The generator is SplitMix64 (64-bit state,
// period 2^64) and bounded draws use rejection, written out here rather than taken from
// <random>: the standard distributions may give different numbers on different standard
// libraries, and augmented shards must be byte-identical everywhere.
#pragma once

#include <cstdint>

namespace kdgrid::augment {

class KeyedRng {
 public:
  KeyedRng(uint64_t seed, uint64_t doc, uint64_t variant);

  uint64_t next();  // 64 uniform bits
  // Uniform in [0, n); n > 0.
  uint64_t below(uint64_t n);
  // Uniform in [0, 1), 53 bits.
  double uniform();

 private:
  uint64_t state_;
};

}  // namespace kdgrid::augment
