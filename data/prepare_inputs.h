// The documents `kdgrid prepare` reads from its --input paths (DESIGN section 2).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "data/shards.h"

namespace kdgrid {

// Provenance method code of documents that came from plain text files, when other inputs
// carry provenance (named "none" in the method codes attribute).
inline constexpr uint8_t kPlainTextMethod = 255;

struct PrepareInputs {
  std::vector<std::string_view> docs;  // [n_docs] in input order; views into the storage below
  uint64_t input_bytes = 0;            // text bytes read (files, and shard text)
  size_t num_text_files = 0;
  size_t num_text_shards = 0;
  // Per-document provenance columns [n_docs], merged method codes and parameters; empty
  // (no columns) when no input shard carries provenance.
  Provenance provenance;

  // Owners of the bytes `docs` points into (stable addresses).
  std::vector<std::unique_ptr<const std::string>> storage;
};

// Reads every path in order. A regular file is split into documents at blank lines
// (splitDocuments). A directory contributes its kdgrid-text shards in file-name order, their
// documents as stored, their provenance carried over: documents from plain files then get
// source_doc = -1 and method kPlainTextMethod (and source_token_offset = -1 when that column
// exists). Inputs whose method codes or parameters disagree cannot be merged. Throws
// UsageError naming `option` and the path, or the shard file and dataset.
PrepareInputs readPrepareInputs(const std::vector<std::string>& paths, std::string_view option);

}  // namespace kdgrid
