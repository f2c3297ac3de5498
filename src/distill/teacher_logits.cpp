#include "src/distill/teacher_logits.h"
#include "src/tensor/backends.h"

#include "src/tensor/staging.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <vector>

#include "data/shards.h"
#include "data/token_stream.h"
#include "data/topk_shards.h"
#include "kernels/cpu/cross_entropy.h"
#include "src/core/log.h"
#include "src/distill/stage_forward.h"
#include "src/distill/teacher.h"
#include "src/model/xent_stats.h"
#include "src/tensor/ops.h"

namespace kdgrid {
namespace {

// Rows of logits per chunk on the last stage.
constexpr int64_t kChunkRows = 256;

// A candidate of the top-k: ordered by value descending, then id ascending (deterministic,
// so every tp split gives the same result).
struct Candidate {
  float value;
  uint32_t id;
  bool operator<(const Candidate& o) const {
    return value > o.value || (value == o.value && id < o.id);
  }
};

// The top-k of log-softmax(logits / T) for one chunk of rows, vocabulary-parallel over `tp`.
// logits [n, V_local] fp32 on rt's backend (scaled in place); ids_below: only ids below it are
// candidates. The log-normaliser is formed by ops; the selection runs on the host over staged
// copies. Fills ids and logprobs [n, k] (host).
void topkChunk(Runtime& rt, Tensor& logits, const cpu::VocabSlice& slice, uint32_t ids_below,
               int64_t k, float temperature, Communicator& tp, uint32_t* ids, float* logprobs) {
  const int64_t n = logits.dim(0);
  ops::scale(rt, logits, 1.0f / temperature);
  // log-normaliser over the full vocabulary: cross-entropy's row statistics with any valid
  // target (its target logit is unused).
  const Tensor any_target = rt.pool.zeros({n}, DType::kU32);
  const XentStats st = reduceXentStats(rt, tp, logits, any_target,
                                       {slice.start, slice.size, slice.valid});
  const std::vector<float> z_host = toHost<float>(logits);
  const std::vector<float> max_host = toHost<float>(st.global_max);
  const std::vector<float> sums = toHost<float>(st.sumExp());
  const float* z = z_host.data();
  // This rank's top-k candidates per row: [n, k] values and ids (ids carried as floats in the
  // gather; exact below 2^24, checked by the caller). Missing ones: -inf, id UINT32_MAX.
  const int64_t local_end = std::clamp<int64_t>(int64_t(ids_below) - slice.start, 0, slice.size);
  // gathered [tp, 2, n, k]: this rank's block at its place, the others' after the gather.
  std::vector<float> gathered(2 * n * k * tp.size());
  float* local = gathered.data() + tp.rank() * 2 * n * k;
  std::vector<Candidate> row;
  for (int64_t r = 0; r < n; ++r) {
    row.clear();
    for (int64_t c = 0; c < local_end; ++c)
      row.push_back({z[r * slice.size + c], static_cast<uint32_t>(slice.start + c)});
    const int64_t take = std::min<int64_t>(k, row.size());
    std::partial_sort(row.begin(), row.begin() + take, row.end());
    for (int64_t j = 0; j < k; ++j) {
      local[r * k + j] = j < take ? row[j].value : -std::numeric_limits<float>::infinity();
      local[n * k + r * k + j] = j < take ? static_cast<float>(row[j].id) : -1.0f;
    }
  }
  if (tp.size() > 1) tp.allGather(gathered.data(), FlatShards(gathered.size(), tp.size()));
  for (int64_t r = 0; r < n; ++r) {
    row.clear();
    for (int rank = 0; rank < tp.size(); ++rank) {
      const float* block = gathered.data() + rank * 2 * n * k;
      for (int64_t j = 0; j < k; ++j) {
        const float id = block[n * k + r * k + j];
        if (id >= 0) row.push_back({block[r * k + j], static_cast<uint32_t>(id)});
      }
    }
    KDGRID_CHECK(int64_t(row.size()) >= k, "top-k: {} candidates for k = {}", row.size(), k);
    std::partial_sort(row.begin(), row.begin() + k, row.end());
    const double lse = double(max_host[r]) + std::log(double(sums[r]));
    for (int64_t j = 0; j < k; ++j) {
      ids[r * k + j] = row[j].id;
      logprobs[r * k + j] = static_cast<float>(double(row[j].value) - lse);
    }
  }
}

}  // namespace

po::options_description teacherLogitsOptions(TeacherLogitsConfig& c) {
  po::options_description o("Teacher logits");
  // clang-format off
  o.add_options()
    ("teacher", po::value(&c.teacher)->value_name("CKPT"), "teacher checkpoint (step or run directory)")
    ("data", po::value(&c.data)->value_name("DIR"), "kdgrid-tokens shards to run the teacher over")
    ("out", po::value(&c.out)->value_name("DIR"),
     "where the kdgrid-teacher-topk shards go (same file names as the token shards)")
    ("topk", po::value(&c.topk)->default_value(c.topk), "ids kept per position")
    ("kd-temperature", valueWithDefault(&c.temperature),
     "temperature T of the stored log-softmax(z / T) (distill may use another)")
    ("batch-size", po::value(&c.batch_size)->default_value(c.batch_size),
     "windows per forward pass per data-parallel replica")
    ("logprobs-dtype", po::value(&c.dtype)->default_value(c.dtype), "float16 | float32");
  // clang-format on
  return o;
}

void TeacherLogitsConfig::validate() const {
  KDGRID_OPTION_CHECK(!teacher.empty(), "--teacher is required");
  KDGRID_OPTION_CHECK(!data.empty(), "--data is required");
  KDGRID_OPTION_CHECK(!out.empty(), "--out is required");
  KDGRID_OPTION_CHECK(topk >= 1, "--topk must be >= 1 (got {})", topk);
  KDGRID_OPTION_CHECK(temperature > 0 && std::isfinite(temperature),
                      "--kd-temperature must be a positive number (got {})", temperature);
  KDGRID_OPTION_CHECK(batch_size >= 1, "--batch-size must be >= 1");
  KDGRID_OPTION_CHECK(dtype == "float16" || dtype == "float32",
                      "--logprobs-dtype must be float16 or float32 (got '{}')", dtype);
}

void writeTeacherLogits(const TeacherLogitsConfig& c, GridConfig gc) {
  namespace fs = std::filesystem;
  const TokenStream stream(c.data);  // checks the shards agree on vocabulary and tokenizer
  const std::vector<std::string> shards = listShards(c.data, kTokensFormat);
  const uint32_t data_vocab = stream.vocabSize();
  KDGRID_OPTION_CHECK(c.topk <= data_vocab, "--topk {} exceeds the vocab_size {} of --data {}",
                      c.topk, data_vocab, c.data);
  KDGRID_CHECK(data_vocab <= (1u << 24), "vocab_size {} too large for the top-k gather",
               data_vocab);

  Teacher t = findTeacher(c.teacher, "--teacher");
  KDGRID_OPTION_CHECK(int64_t(data_vocab) <= t.config.vocab_size,
                      "--data {} has vocab_size {}, more than the teacher's {}", c.data, data_vocab,
                      t.config.vocab_size);
  resolveGridFor(gc, worldSize(), t.config);
  ProcessGrid grid(gc);
  log0("{}", grid.describe());
  Runtime rt(backendNamed(gc.device));
  loadTeacher(t, "--teacher", grid, DType::kF32, rt, nullptr, "--data " + c.data,
              stream.tokenizerSha256());
  Gpt2Stage& model = *t.stage;
  const int64_t window = t.config.max_seq, k = c.topk;
  const cpu::VocabSlice slice{model.vocabStart(), model.vocabLocal(), t.config.vocab_size};

  if (worldRank() == 0) fs::create_directories(c.out);
  grid.world().barrier();
  const bool writer = grid.lastStage() && grid.tpRank() == 0;
  int written = 0;
  for (size_t j = grid.dpRank(); j < shards.size(); j += grid.dp()) {
    const TokenShardInfo info = readTokenShardInfo(shards[j]);
    const std::string name = fs::path(shards[j]).filename().string();
    std::optional<TopkShardWriter> out;
    if (writer) {
      TopkShardInfo header;
      header.n_tokens = info.n_tokens;
      header.k = static_cast<uint32_t>(k);
      header.temperature = c.temperature;
      header.teacher_checkpoint = t.step_dir;
      header.token_shard = name;
      header.float16 = c.dtype == "float16";
      header.vocab_size = data_vocab;
      header.tokenizer_sha256 = info.tokenizer_sha256;
      header.window = static_cast<uint32_t>(window);
      out.emplace((fs::path(c.out) / name).string(), header);
    }
    std::optional<TokenShardReader> reader;
    if (grid.firstStage()) reader.emplace(info);
    // Batches of whole windows, then the shorter last window alone.
    const uint64_t full = info.n_tokens / window, tail = info.n_tokens % window;
    std::vector<std::pair<uint64_t, std::pair<int64_t, int64_t>>> batches;  // begin, (B, T)
    for (uint64_t w = 0; w < full; w += c.batch_size)
      batches.push_back({w * window, {std::min<int64_t>(c.batch_size, full - w), window}});
    if (tail > 0) batches.push_back({full * window, {1, int64_t(tail)}});
    std::vector<uint32_t> ids, tokens;
    std::vector<float> logprobs;
    for (const auto& [begin, shape] : batches) {
      const auto [B, T] = shape;
      if (reader) tokens = reader->read(begin, B * T);
      StageActivations acts;
      forwardThroughStages(model, grid.ppComm(), tokens.data(), B, T, acts, kTagTeacherActivation);
      if (!grid.lastStage()) continue;
      const int64_t N = B * T;
      ids.resize(N * k);
      logprobs.resize(N * k);
      for (int64_t r0 = 0; r0 < N; r0 += kChunkRows) {
        const int64_t n = std::min(kChunkRows, N - r0);
        Tensor logits = rt.zeros({n, slice.size}, DType::kF32);
        model.headLogits(acts, r0, logits);
        topkChunk(rt, logits, slice, data_vocab, k, static_cast<float>(c.temperature),
                  grid.tpComm(), ids.data() + r0 * k, logprobs.data() + r0 * k);
      }
      if (out) out->write(begin, N, ids.data(), logprobs.data());
    }
    if (out) {
      out->finish();
      logRank("wrote {} ({} rows, k {})", (fs::path(c.out) / name).string(), info.n_tokens, k);
    }
    ++written;
  }
  grid.world().barrier();
  log0("teacher-logits: {} shards of --data {} -> {}", shards.size(), c.data, c.out);
}

}  // namespace kdgrid
