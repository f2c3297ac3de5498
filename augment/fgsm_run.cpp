#include "augment/fgsm_run.h"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "augment/fgsm_attack.h"
#include "augment/method.h"
#include "augment/output_dir.h"
#include "augment/shard_plan.h"
#include "data/h5.h"
#include "data/shards.h"
#include "data/token_stream.h"
#include "src/core/agreement.h"
#include "src/core/check.h"
#include "src/core/dtype.h"
#include "src/core/log.h"
#include "src/inference/inference_model.h"
#include "src/tensor/backends.h"

namespace kdgrid::augment {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Input document of the window starting at `local` (a token offset within the shard):
// the last document starting at or before it (empty documents skipped).
int64_t sourceDoc(const std::vector<uint64_t>& doc_offsets, uint64_t first_doc, uint64_t local) {
  const auto it = std::upper_bound(doc_offsets.begin(), doc_offsets.end(), local);
  return static_cast<int64_t>(first_doc) + (it - doc_offsets.begin()) - 1;
}

void writeDeltas(const std::string& path, const std::vector<float>& deltas, int64_t C) {
  std::vector<f16> half(deltas.size());
  std::transform(deltas.begin(), deltas.end(), half.begin(), [](float d) { return f16(d); });
  h5::File file = h5::File::openReadWrite(path);
  h5::Group group = file.createGroup("fgsm");
  h5::Dataset ds = group.createDataset(
      "deltas", {deltas.size() / static_cast<uint64_t>(C), static_cast<uint64_t>(C)},
      h5::ElemType::kF16);
  if (!half.empty()) ds.writeRows(h5::ElemType::kF16, 0, half.size(), half.data());
}

}  // namespace

FgsmSummary runFgsmAugmentation(const FgsmRunConfig& config) {
  const auto start = Clock::now();
  const int me = worldRank();
  std::vector<TokenShardAssignment> plan;
  agreeOnOutcome([&] { plan = planTokenShards(config.input, worldSize()); });
  agreeOnOutcome([&] {
    if (me == 0) prepareOutputDir(config.out);
  });

  // Every rank holds the whole model (collective: builds the per-rank grid, reads the slices).
  Runtime rt(backendNamed(config.device));
  InferenceModel m = loadInferenceModel(
      config.checkpoint, GridConfig{.dp = worldSize(), .pp = 1, .tp = 1, .device = config.device},
      rt);
  const int64_t T = m.config.max_seq, C = m.config.d_model;
  std::optional<TokenStream> stream;
  agreeOnOutcome([&] {
    stream.emplace(config.input);
    KDGRID_INPUT_CHECK(stream->tokenizerSha256() == m.meta.tokenizer_sha256,
                       "--input {} was tokenized with another tokenizer than --checkpoint {} "
                       "(tokenizer_sha256 differs)",
                       config.input, m.step_dir);
    KDGRID_INPUT_CHECK(stream->vocabSize() <= uint64_t(m.config.vocab_size),
                       "--input {}: vocab_size {} exceeds the model's {} (--checkpoint {})",
                       config.input, stream->vocabSize(), m.config.vocab_size, m.step_dir);
  });
  const uint64_t W = static_cast<uint64_t>(T + 1);
  const uint64_t n_windows = stream->size() / W;

  FgsmSummary local;
  std::vector<std::string> parts;
  double attack_seconds = 0;
  auto work = [&] {
    FgsmAttacker attacker(*m.model, rt, stream->vocabSize(), static_cast<float>(config.epsilon),
                          config.max_flips);
    std::vector<uint32_t> window(W);
    for (const TokenShardAssignment& shard : plan) {
      if (shard.owner != me) continue;
      // Windows whose first token lies in this shard.
      const uint64_t first = (shard.first_token + W - 1) / W;
      // None (a shard shorter than a window, or past the last whole one): the output shard is
      // written anyway, with no documents, so that every input shard has its output.
      const uint64_t end =
          std::max(first, std::min(n_windows, (shard.first_token + shard.num_tokens + W - 1) / W));
      const std::vector<uint64_t> doc_offsets =
          h5::File::openRead(shard.path).openDataset("doc_offsets").read<uint64_t>();
      KDGRID_INPUT_CHECK(doc_offsets.size() == shard.num_docs + 1,
                         "--input: shard '{}' changed while augment read it", shard.path);
      TokenShard out;
      out.vocab_size = stream->vocabSize();
      out.eot_token = stream->eotToken();
      out.tokenizer_sha256 = stream->tokenizerSha256();
      out.doc_offsets.push_back(0);
      out.provenance.method_names = kMethodCodes;
      out.provenance.token_offsets = true;  // the column exists even in a shard of no windows
      out.provenance.params = {{"augment_method", "fgsm"},
                               {"augment_input", config.input},
                               {"epsilon", fmt::format("{}", config.epsilon)},
                               {"max_flips", fmt::format("{}", config.max_flips)},
                               {"seed", fmt::format("{}", config.seed)},
                               {"checkpoint", m.step_dir}};
      std::vector<float> deltas;
      if (config.save_deltas) deltas.resize((end - first) * W * C);
      const auto t0 = Clock::now();
      for (uint64_t w = first; w < end; ++w) {
        const uint64_t offset = w * W;
        stream->read(offset, W, window.data());
        const FgsmWindowResult r = attacker.attack(
            window, config.save_deltas ? deltas.data() + (w - first) * W * C : nullptr);
        out.tokens.insert(out.tokens.end(), r.window.begin(), r.window.end());
        out.doc_offsets.push_back(out.tokens.size());
        out.provenance.source_doc.push_back(
            sourceDoc(doc_offsets, shard.first_doc, offset - shard.first_token));
        out.provenance.method.push_back(static_cast<uint8_t>(Method::kFgsm));
        out.provenance.source_token_offset.push_back(static_cast<int64_t>(offset));
        local.windows += 1;
        local.flips += r.flips;
        local.tried += r.tried;
        local.clean_loss += r.clean_loss;
        local.adv_loss += r.adv_loss;
      }
      attack_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
      const std::string part = (fs::path(config.out) / shard.name).string() + kPartSuffix;
      parts.push_back(part);
      writeTokenShard(part, out);
      if (config.save_deltas) writeDeltas(part, deltas, C);
      ++local.shards_written;
    }
  };
  try {
    agreeOnOutcome(work);
  } catch (...) {
    removeFiles(parts);
    throw;
  }
  publishParts(parts);

  uint64_t counts[4] = {local.shards_written, local.windows, local.flips, local.tried};
  KDGRID_MPI(MPI_Allreduce(MPI_IN_PLACE, counts, 4, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD));
  double losses[2] = {local.clean_loss, local.adv_loss};
  KDGRID_MPI(MPI_Allreduce(MPI_IN_PLACE, losses, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
  FgsmSummary summary;
  summary.shards_written = counts[0];
  summary.windows = counts[1];
  summary.flips = counts[2];
  summary.tried = counts[3];
  const double n = std::max<double>(1, static_cast<double>(summary.windows));
  summary.clean_loss = losses[0] / n;
  summary.adv_loss = losses[1] / n;
  double seconds[2] = {std::chrono::duration<double>(Clock::now() - start).count(), attack_seconds};
  KDGRID_MPI(MPI_Allreduce(MPI_IN_PLACE, seconds, 2, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD));
  summary.seconds = seconds[0];
  summary.attack_seconds = seconds[1];
  return summary;
}

}  // namespace kdgrid::augment
