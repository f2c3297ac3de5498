// The interface between the augment driver (augment_run.h) and a text method (back-translation,
// perturbation), and the collection of a shard's variants with their provenance.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "augment/method.h"
#include "data/shards.h"

namespace kdgrid::augment {

// An input text shard as the driver hands it to a method.
struct InputShard {
  std::string name;  // file name, e.g. "text_00000.h5" (the output shard gets the same name)
  TextShard text;
  uint64_t first_doc = 0;  // global index of its first document in the input directory
};

// Counts of one rank, or of all ranks after a reduction.
struct AugmentStats {
  uint64_t shards = 0;          // input shards
  uint64_t shards_written = 0;  // output shards (one per input shard, maybe without documents)
  uint64_t docs = 0;            // input documents
  uint64_t segments = 0;   // sentences rewritten (sent to a translator once, whatever the pivots)
  uint64_t written = 0;    // output documents
  uint64_t identical = 0;  // variants dropped: identical to their source document
  uint64_t duplicate = 0;  // variants dropped: identical to an earlier variant of the same source
};

// A text method. The driver submits this rank's shards in order and collects them in the same
// order. It collects a shard only once at least lookaheadBytes() of text were submitted after
// it, or after endOfInput(): back-translation keeps its translators busy across shard
// boundaries, and a translator that holds output back until more input comes never waits for
// input that the driver withholds.
class TextAugmenter {
 public:
  virtual ~TextAugmenter() = default;
  // Text bytes that must follow a shard before collect() may wait for its results. 0: a shard
  // can be collected as soon as it is submitted.
  virtual uint64_t lookaheadBytes() const { return 0; }
  virtual void submit(const InputShard& shard) = 0;
  // No more submit() will come.
  virtual void endOfInput() {}
  // The augmented documents (with provenance columns) of the oldest submitted shard not yet
  // collected, which is `shard`.
  virtual TextShard collect(const InputShard& shard, AugmentStats& stats) = 0;
  // After the last collect(): checks that the method's helpers ended cleanly.
  virtual void finish() = 0;
};

// Builds an output shard: the variants of each source document in order, without those equal
// to the source or to an earlier variant of it.
class VariantSink {
 public:
  explicit VariantSink(Method method);
  void add(uint64_t source_doc, std::string_view source, std::span<const std::string> variants,
           AugmentStats& stats);
  // The shard built so far (method codes attribute set; parameters are the driver's).
  TextShard take();

 private:
  Method method_;
  TextShard shard_;
};

}  // namespace kdgrid::augment
