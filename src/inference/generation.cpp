#include "src/inference/generation.h"

#include <algorithm>

#include "src/core/check.h"

namespace kdgrid {

TokenDecoder::TokenDecoder(Gpt2Stage& model, DecodePath path)
    : model_(model), path_(path), logits_(model.config().vocab_size) {
  KDGRID_CHECK(model.firstStage() && model.lastStage() && model.vocabLocal() >= model.config().vocab_size,
               "generation needs the whole model on one rank");
  if (path_ == DecodePath::kKvCache) cache_ = model_.makeKvCache(1);
}

void TokenDecoder::forwardWindow() {
  const int64_t n = std::min<int64_t>(model_.config().max_seq, ids_.size());
  const uint32_t* window = ids_.data() + ids_.size() - n;
  if (path_ == DecodePath::kKvCache) {
    model_.prefill(cache_, window, n, logits_.data());
    return;
  }
  StageActivations acts;
  model_.forward(acts, window, nullptr, 1, n);
  model_.logitsAt(acts, n - 1, logits_.data());
}

std::span<const float> TokenDecoder::start(std::span<const uint32_t> context) {
  KDGRID_CHECK(!context.empty(), "generation needs a non-empty context");
  ids_.assign(context.begin(), context.end());
  forwardWindow();
  return logits_;
}

std::span<const float> TokenDecoder::append(uint32_t id) {
  KDGRID_CHECK(!ids_.empty(), "TokenDecoder::append before start");
  ids_.push_back(id);
  // The cache holds exactly the context while it fits; past max_seq the window slides.
  if (path_ == DecodePath::kKvCache && static_cast<int64_t>(ids_.size()) <= cache_.capacity()) {
    model_.decodeStep(cache_, &ids_.back(), logits_.data());
  } else {
    forwardWindow();
  }
  return logits_;
}

void generateTokens(Gpt2Stage& model, std::vector<uint32_t>& ids, const GenerateOptions& options,
                    std::mt19937_64& rng, DecodePath path,
                    const std::function<void(std::span<const float>)>& on_logits) {
  const int64_t vocab = model.config().vocab_size;
  const int64_t sample_vocab = options.sample_vocab > 0 ? std::min(options.sample_vocab, vocab) : vocab;
  TokenDecoder decoder(model, path);
  std::span<const float> logits = decoder.start(ids);
  for (int i = 0; i < options.max_new_tokens; ++i) {
    if (i > 0) logits = decoder.append(ids.back());
    if (on_logits) on_logits(logits);
    const uint32_t next = sampleToken(logits.first(sample_vocab), options.sampling, rng);
    if (options.stop_token && next == *options.stop_token) break;
    ids.push_back(next);
  }
}

}  // namespace kdgrid
