#include "augment/keyed_rng.h"

namespace kdgrid::augment {
namespace {

constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ULL;  // 2^64 / golden ratio, SplitMix64's step

// SplitMix64's output function: a bijective 64-bit mixer.
uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

// Each key component passes through the mixer before the next is folded in, so nearby keys
// ((s, d, v) and (s, d + 1, v)) start far apart in the sequence.
KeyedRng::KeyedRng(uint64_t seed, uint64_t doc, uint64_t variant)
    : state_(mix(mix(mix(seed + kGolden) ^ (doc + 2 * kGolden)) ^ (variant + 3 * kGolden))) {}

uint64_t KeyedRng::next() {
  state_ += kGolden;
  return mix(state_);
}

uint64_t KeyedRng::below(uint64_t n) {
  // Values below 2^64 mod n would make the low residues more likely: draw again.
  const uint64_t reject_below = (0 - n) % n;
  for (;;) {
    const uint64_t r = next();
    if (r >= reject_below) return r % n;
  }
}

double KeyedRng::uniform() {
  return static_cast<double>(next() >> 11) * 0x1.0p-53;
}

}  // namespace kdgrid::augment
