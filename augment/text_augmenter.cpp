#include "augment/text_augmenter.h"

#include <algorithm>

namespace kdgrid::augment {

VariantSink::VariantSink(Method method) : method_(method) {
  shard_.offsets = {0};
}

void VariantSink::add(uint64_t source_doc, std::string_view source,
                      std::span<const std::string> variants, AugmentStats& stats) {
  for (size_t v = 0; v < variants.size(); ++v) {
    const std::string& variant = variants[v];
    if (variant == source) {
      ++stats.identical;
      continue;
    }
    if (std::find(variants.begin(), variants.begin() + static_cast<ptrdiff_t>(v), variant) !=
        variants.begin() + static_cast<ptrdiff_t>(v)) {
      ++stats.duplicate;
      continue;
    }
    shard_.bytes += variant;
    shard_.offsets.push_back(shard_.bytes.size());
    shard_.provenance.source_doc.push_back(static_cast<int64_t>(source_doc));
    shard_.provenance.method.push_back(static_cast<uint8_t>(method_));
    ++stats.written;
  }
}

TextShard VariantSink::take() {
  shard_.provenance.method_names = kMethodCodes;
  TextShard out = std::move(shard_);
  shard_ = TextShard();
  shard_.offsets = {0};
  return out;
}

}  // namespace kdgrid::augment
