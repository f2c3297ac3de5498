// The lookup at the heart of BPE encoding: (left id, right id) -> (rank, merged id). Built
// once, then read-only (safe to share between threads). Open addressing with linear probing
// in a power-of-two table at most half full, keys hashed by a multiplicative (Fibonacci) hash:
// one or two cache lines per lookup, against the bucket-and-node walk of std::unordered_map
// (which took half of the encoding time).
#pragma once

#include <cstdint>
#include <vector>

namespace kdgrid {

class MergeTable {
 public:
  struct Rule {
    uint32_t rank;    // position in the merge list: lower ranks merge first
    uint32_t result;  // id of the merged token
  };

  explicit MergeTable(size_t expected = 0) { reserve(expected); }

  // Inserts a rule; returns false (and changes nothing) when the pair already has one.
  bool insert(uint32_t left, uint32_t right, Rule rule) {
    if (2 * (size_ + 1) > slots_.size()) reserve(2 * (size_ + 1));
    Slot& s = probe(key(left, right));
    if (s.key != kEmpty) return false;
    s = {key(left, right), rule};
    ++size_;
    return true;
  }

  const Rule* find(uint32_t left, uint32_t right) const {
    const uint64_t k = key(left, right);
    for (size_t i = index(k);; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key == k) return &s.rule;
      if (s.key == kEmpty) return nullptr;
    }
  }

  size_t size() const { return size_; }

 private:
  // Ids are < 2^31, so no real pair has this key.
  static constexpr uint64_t kEmpty = UINT64_MAX;
  struct Slot {
    uint64_t key = kEmpty;
    Rule rule{};
  };

  static uint64_t key(uint32_t left, uint32_t right) { return (uint64_t{left} << 32) | right; }
  size_t index(uint64_t k) const {
    return static_cast<size_t>((k * 0x9E3779B97F4A7C15ull) >> shift_) & mask_;
  }
  Slot& probe(uint64_t k) {
    size_t i = index(k);
    while (slots_[i].key != kEmpty && slots_[i].key != k) i = (i + 1) & mask_;
    return slots_[i];
  }
  // Grows to a power of two >= 2 * n slots (load factor <= 1/2) and re-inserts.
  void reserve(size_t n) {
    size_t capacity = 16;
    int bits = 4;
    while (capacity < 2 * n) {
      capacity *= 2;
      ++bits;
    }
    if (capacity <= slots_.size()) return;
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(capacity, Slot{});
    mask_ = capacity - 1;
    shift_ = 64 - bits;
    for (const Slot& s : old) {
      if (s.key != kEmpty) probe(s.key) = s;
    }
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  int shift_ = 64;
  size_t size_ = 0;
};

}  // namespace kdgrid
