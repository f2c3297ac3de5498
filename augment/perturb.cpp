#include "augment/perturb.h"

#include <omp.h>

#include "augment/segments.h"

namespace kdgrid::augment {
namespace {

class Perturber : public TextAugmenter {
 public:
  explicit Perturber(const PerturbConfig& config)
      : config_(config), wordnet_(WordNet::load(config.wordnet_dir)) {}

  void submit(const InputShard&) override {}

  TextShard collect(const InputShard& shard, AugmentStats& stats) override {
    const auto n = static_cast<int64_t>(shard.text.numDocs());
    std::vector<std::vector<std::string>> variants(n);  // [doc][variant]
    EdaCounts counts;
#pragma omp parallel
    {
      SentencePerturber perturber(*wordnet_, config_.rates);
      EdaCounts mine;
#pragma omp for schedule(dynamic, 16)
      for (int64_t d = 0; d < n; ++d) {
        variants[d] =
            perturbDocument(docView(shard, d), shard.first_doc + d, config_, perturber, mine);
      }
#pragma omp critical
      counts += mine;
    }
    VariantSink sink(Method::kPerturb);
    for (int64_t d = 0; d < n; ++d) {
      sink.add(shard.first_doc + d, docView(shard, d), variants[d], stats);
    }
    // Sentences per variant: the document's, once (the figure back-translation reports too).
    stats.segments += counts.sentences / static_cast<uint64_t>(config_.num_aug);
    return sink.take();
  }

  void finish() override {}

 private:
  static std::string_view docView(const InputShard& shard, int64_t d) {
    const auto begin = shard.text.offsets[d], end = shard.text.offsets[d + 1];
    return std::string_view(shard.text.bytes).substr(begin, end - begin);
  }

  PerturbConfig config_;
  std::unique_ptr<const WordNet> wordnet_;
};

}  // namespace

std::unique_ptr<TextAugmenter> makePerturber(const PerturbConfig& config) {
  return std::make_unique<Perturber>(config);
}

std::vector<std::string> perturbDocument(std::string_view doc, uint64_t doc_id,
                                         const PerturbConfig& config, SentencePerturber& perturber,
                                         EdaCounts& counts) {
  const Segmentation seg = segmentDocument(doc);
  std::vector<std::string> variants;
  variants.reserve(config.num_aug);
  for (int v = 0; v < config.num_aug; ++v) {
    KeyedRng rng(config.seed, doc_id, static_cast<uint64_t>(v));
    std::string out;
    out.reserve(doc.size() + doc.size() / 4);
    for (size_t s = 0; s < seg.segments.size(); ++s) {
      out.append(seg.gaps[s]);
      perturber.perturb(seg.segments[s], rng, out, counts);
    }
    out.append(seg.gaps.back());
    variants.push_back(std::move(out));
  }
  return variants;
}

}  // namespace kdgrid::augment
