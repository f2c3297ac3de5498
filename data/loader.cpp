#include "data/loader.h"

#include "data/token_stream.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <exception>
#include <limits>
#include <mutex>
#include <numeric>
#include <optional>
#include <random>
#include <string_view>
#include <thread>

#include "data/shards.h"
#include "src/core/check.h"
#include "src/core/options.h"

namespace kdgrid {

namespace {

// The stream id of the epoch-wide shuffle (per-source permutations use the source index).
constexpr uint64_t kShuffleStream = std::numeric_limits<uint64_t>::max();

uint64_t splitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// The key of one permutation: a function of (seed, epoch, stream) only, never of how many
// numbers were drawn before, so any cursor can be resumed without replaying history.
uint64_t permutationKey(uint64_t seed, uint64_t epoch, uint64_t stream) {
  return splitMix64(splitMix64(splitMix64(seed) ^ epoch) ^ stream);
}

// A uniform draw in [0, n) from mt19937_64's raw output (whose sequence the C++ standard fixes;
// std::uniform_int_distribution and std::shuffle are implementation-defined, so they would
// make the data order depend on the standard library).
uint64_t boundedDraw(std::mt19937_64& rng, uint64_t n) {
  const uint64_t reject_below = (0 - n) % n;  // 2^64 mod n: values below it would bias the draw
  for (;;) {
    const uint64_t x = rng();
    if (x >= reject_below) return x % n;
  }
}

// A permutation of [0, n) (Fisher-Yates) determined by `key`.
std::vector<uint64_t> keyedPermutation(uint64_t n, uint64_t key) {
  std::vector<uint64_t> p(n);
  std::iota(p.begin(), p.end(), uint64_t{0});
  std::mt19937_64 rng(key);
  for (uint64_t i = n; i > 1; --i) std::swap(p[i - 1], p[boundedDraw(rng, i)]);
  return p;
}

std::string_view trimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// One source directory: its shards as one token stream cut into windows.
struct Source {
  std::string dir;
  double weight = 1;
  std::unique_ptr<TokenStream> stream;
  uint64_t windows = 0;               // floor(total tokens / seq_len)
  uint64_t samples = 0;               // samples per epoch, round(E * w / sum(w))
};

// What one epoch draws: the shuffle and the per-source choice of windows.
struct EpochPlan {
  uint64_t epoch = 0;
  std::vector<uint64_t> order;                      // [samples] position -> sample index
  std::vector<std::vector<uint64_t>> source_order;  // [source][windows] sample -> window
};

}  // namespace

std::vector<DataSource> parseDataSources(const std::string& spec, const std::string& flag) {
  std::vector<DataSource> sources;
  KDGRID_OPTION_CHECK(!trimSpaces(spec).empty(), "{}: no data directory given", flag);
  std::string_view rest = spec;
  for (;;) {
    const size_t comma = rest.find(',');
    const std::string_view item = trimSpaces(rest.substr(0, comma));
    KDGRID_OPTION_CHECK(!item.empty(), "{}: empty entry in '{}' (expected DIR[:WEIGHT],...)", flag,
                        spec);
    DataSource source;
    const size_t colon = item.rfind(':');
    source.dir = std::string(trimSpaces(item.substr(0, colon)));
    if (colon != std::string_view::npos) {
      const std::string_view text = trimSpaces(item.substr(colon + 1));
      double weight = 0;
      const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), weight);
      KDGRID_OPTION_CHECK(ec == std::errc() && end == text.data() + text.size() &&
                              std::isfinite(weight) && weight > 0,
                          "{}: weight '{}' of '{}' is not a positive number", flag, text, item);
      source.weight = weight;
    }
    KDGRID_OPTION_CHECK(!source.dir.empty(), "{}: empty directory name in '{}'", flag, spec);
    sources.push_back(std::move(source));
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return sources;
}

struct DataLoader::Impl {
  LoaderConfig config;
  std::vector<Source> sources;
  std::vector<uint64_t> source_first_sample;  // [n_sources + 1] cumulative samples per epoch
  uint64_t samples_per_epoch = 0;
  uint32_t vocab_size = 0;
  uint32_t eot_token = 0;
  std::string tokenizer_sha256;

  // The cursor of the next batch to produce. Touched only by whoever produces: the caller's
  // thread without prefetch, the worker thread with it.
  DataCursor produce_cursor;
  std::optional<EpochPlan> plan;  // cache of the latest epoch used (belongs to the producer)

  // Prefetch: a one-slot queue between the worker and next().
  std::thread worker;
  std::mutex mutex;
  std::condition_variable changed;
  bool started = false;    // next() has been called (only next() touches it)
  bool requested = false;  // next() wants a batch the worker has not started
  bool stopping = false;
  std::optional<StepBatch> ready;  // the produced batch, waiting for next()
  std::exception_ptr error;        // what the worker threw; rethrown by every later next()

  Impl(const LoaderConfig& cfg, DataCursor start);
  ~Impl();
  void openSources();
  const EpochPlan& planFor(uint64_t epoch);
  DataCursor advance(DataCursor c, uint64_t samples) const;
  void readWindow(const Source& source, uint64_t window, uint32_t* out) const;
  StepBatch produce();
  void workerLoop();
};

DataLoader::Impl::Impl(const LoaderConfig& cfg, DataCursor start)
    : config(cfg), produce_cursor(start) {
  KDGRID_INPUT_CHECK(!config.sources.empty(), "--data: no data directory given");
  KDGRID_INPUT_CHECK(config.seq_len >= 2,
                     "--max-seq: a window needs max_seq + 1 >= 2 tokens, got {}", config.seq_len);
  KDGRID_INPUT_CHECK(config.micro_batch >= 1, "--batch-size must be at least 1");
  KDGRID_INPUT_CHECK(config.grad_accum >= 1, "--grad-accum must be at least 1");
  KDGRID_INPUT_CHECK(config.dp >= 1 && config.dp_rank < config.dp,
                     "--dp: data-parallel rank {} is not below dp = {}", config.dp_rank, config.dp);
  openSources();
  KDGRID_INPUT_CHECK(start.position < samples_per_epoch,
                     "data cursor (epoch {}, position {}) is past the {} samples of an epoch of "
                     "--data: the data changed since the checkpoint was written",
                     start.epoch, start.position, samples_per_epoch);
  if (config.prefetch) worker = std::thread([this] { workerLoop(); });
}

DataLoader::Impl::~Impl() {
  if (!worker.joinable()) return;
  {
    std::lock_guard lock(mutex);
    stopping = true;
  }
  changed.notify_all();
  worker.join();  // waits for a batch in progress; the worker never blocks on anything else
}

void DataLoader::Impl::openSources() {
  double weight_sum = 0;
  uint64_t total_windows = 0;
  const std::string* reference_dir = nullptr;  // the directory of the first shard
  for (const DataSource& spec : config.sources) {
    KDGRID_INPUT_CHECK(std::isfinite(spec.weight) && spec.weight > 0,
                       "--data: weight {} of {} is not a positive number", spec.weight, spec.dir);
    Source source;
    source.dir = spec.dir;
    source.weight = spec.weight;
    source.stream = std::make_unique<TokenStream>(spec.dir);  // checks its shards agree
    const TokenStream& stream = *source.stream;
    if (reference_dir == nullptr) {
      vocab_size = stream.vocabSize();
      eot_token = stream.eotToken();
      tokenizer_sha256 = stream.tokenizerSha256();
      reference_dir = &spec.dir;
    }
    // Every source must come from the same tokenizer.
    KDGRID_INPUT_CHECK(stream.vocabSize() == vocab_size,
                       "--data: {} has vocab_size {} but {} has {}: all token shards must come "
                       "from the same tokenizer",
                       spec.dir, stream.vocabSize(), *reference_dir, vocab_size);
    KDGRID_INPUT_CHECK(stream.tokenizerSha256() == tokenizer_sha256,
                       "--data: {} has tokenizer_sha256 '{}' but {} has '{}': all token shards "
                       "must come from the same tokenizer",
                       spec.dir, stream.tokenizerSha256(), *reference_dir, tokenizer_sha256);
    KDGRID_INPUT_CHECK(stream.eotToken() == eot_token, "--data: {} has eot_token {} but {} has {}",
                       spec.dir, stream.eotToken(), *reference_dir, eot_token);
    source.windows = stream.size() / config.seq_len;
    KDGRID_INPUT_CHECK(source.windows > 0,
                       "--data: {} holds {} tokens, fewer than one window of {} (max_seq + 1)",
                       source.dir, stream.size(), config.seq_len);
    weight_sum += source.weight;
    total_windows += source.windows;
    sources.push_back(std::move(source));
  }
  // Rounding rule (loader.h): source i gets round(E * w_i / sum(w)) samples per epoch, halves
  // rounded away from zero. The largest weight gets at least round(E / n) >= 1, since E >= n.
  source_first_sample.push_back(0);
  for (Source& source : sources) {
    source.samples = static_cast<uint64_t>(
        std::llround(static_cast<double>(total_windows) * source.weight / weight_sum));
    source_first_sample.push_back(source_first_sample.back() + source.samples);
  }
  samples_per_epoch = source_first_sample.back();
  KDGRID_CHECK(samples_per_epoch > 0, "an epoch of --data has no samples");
}

const EpochPlan& DataLoader::Impl::planFor(uint64_t epoch) {
  if (plan && plan->epoch == epoch) return *plan;
  EpochPlan p;
  p.epoch = epoch;
  p.order = keyedPermutation(samples_per_epoch, permutationKey(config.seed, epoch, kShuffleStream));
  for (size_t i = 0; i < sources.size(); ++i) {
    p.source_order.push_back(
        keyedPermutation(sources[i].windows, permutationKey(config.seed, epoch, i)));
  }
  plan = std::move(p);
  return *plan;
}

DataCursor DataLoader::Impl::advance(DataCursor c, uint64_t samples) const {
  const uint64_t position = c.position + samples;
  return {c.epoch + position / samples_per_epoch, position % samples_per_epoch};
}

// Tokens [window * seq_len, (window + 1) * seq_len) of a source's stream; they may span shards.
void DataLoader::Impl::readWindow(const Source& source, uint64_t window, uint32_t* out) const {
  source.stream->read(window * config.seq_len, config.seq_len, out);
}

// This rank's share of the global batch at produce_cursor; moves produce_cursor past the whole
// global batch.
StepBatch DataLoader::Impl::produce() {
  const uint64_t per_rank = uint64_t{config.micro_batch} * config.grad_accum;
  const uint64_t global = per_rank * config.dp;
  StepBatch batch;
  batch.tokens.resize(per_rank * config.seq_len);
  DataCursor at = advance(produce_cursor, config.dp_rank * per_rank);
  for (uint64_t s = 0; s < per_rank; ++s) {
    const EpochPlan& p = planFor(at.epoch);
    const uint64_t sample = p.order[at.position];
    const size_t i =
        std::upper_bound(source_first_sample.begin(), source_first_sample.end(), sample) -
        source_first_sample.begin() - 1;
    // Beyond a source's window count the same permutation repeats (weights that oversample).
    const uint64_t j = (sample - source_first_sample[i]) % sources[i].windows;
    readWindow(sources[i], p.source_order[i][j], batch.tokens.data() + s * config.seq_len);
    batch.origins.push_back({static_cast<uint32_t>(i), p.source_order[i][j] * config.seq_len});
    at = advance(at, 1);
  }
  produce_cursor = advance(produce_cursor, global);
  batch.cursor_after = produce_cursor;
  return batch;
}

void DataLoader::Impl::workerLoop() {
  for (;;) {
    {
      std::unique_lock lock(mutex);
      changed.wait(lock, [this] { return requested || stopping; });
      if (stopping) return;
      requested = false;
    }
    std::optional<StepBatch> batch;
    std::exception_ptr failure;
    try {
      batch = produce();
    } catch (...) {
      failure = std::current_exception();
    }
    {
      std::lock_guard lock(mutex);
      ready = std::move(batch);
      error = failure;
    }
    changed.notify_all();
    if (failure) return;  // the loader is unusable from here; next() rethrows
  }
}

DataLoader::DataLoader(const LoaderConfig& config, DataCursor start)
    : impl_(std::make_unique<Impl>(config, start)) {}

DataLoader::~DataLoader() = default;

StepBatch DataLoader::next() {
  Impl& d = *impl_;
  if (!d.config.prefetch) return d.produce();
  std::unique_lock lock(d.mutex);
  if (d.error) std::rethrow_exception(d.error);
  // After every next() one batch is requested, in progress or ready; only the first call has
  // none in flight (the constructor reads no tokens, so an unused loader costs no I/O).
  if (!d.started) {
    d.started = true;
    d.requested = true;
    d.changed.notify_all();
  }
  d.changed.wait(lock, [&] { return d.ready.has_value() || d.error; });
  if (d.error) std::rethrow_exception(d.error);
  StepBatch batch = std::move(*d.ready);
  d.ready.reset();
  // Read the following step while the caller trains on this one.
  d.requested = true;
  lock.unlock();
  d.changed.notify_all();
  return batch;
}

uint32_t DataLoader::vocabSize() const {
  return impl_->vocab_size;
}
uint32_t DataLoader::eotToken() const {
  return impl_->eot_token;
}
const std::string& DataLoader::tokenizerSha256() const {
  return impl_->tokenizer_sha256;
}
uint64_t DataLoader::samplesPerEpoch() const {
  return impl_->samples_per_epoch;
}

}  // namespace kdgrid
