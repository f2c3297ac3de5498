// Data-loader throughput: tokens per second that DataLoader::next() hands out, with and
// without the prefetch thread, over synthetic kdgrid-tokens shards (uniform random ids below a
// GPT-2-sized vocabulary, stored as uint16) written to a temporary directory first.
//
//   bench_loader [--tokens N] [--shard-tokens N] [--seq-len N] [--batch N] [--steps N]
//                [--work-ms MS]
//
// --work-ms simulates a training step between next() calls (a sleep), so the prefetch figure
// shows how much of the data time the thread hides: with prefetch the wait in next() should
// drop to ~0 once a step's compute is longer than reading its batch.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <thread>

#include "data/loader.h"
#include "data/shards.h"
#include "src/core/mpi_session.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  uint64_t tokens = 32'000'000;
  uint64_t shard_tokens = 4'000'000;
  uint32_t seq_len = 1025;
  uint32_t batch = 16;
  uint32_t steps = 200;
  double work_ms = 0;
};

Args parseArgs(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const char* v = argv[i + 1];
    if (k == "--tokens")
      a.tokens = std::strtoull(v, nullptr, 10);
    else if (k == "--shard-tokens")
      a.shard_tokens = std::strtoull(v, nullptr, 10);
    else if (k == "--seq-len")
      a.seq_len = static_cast<uint32_t>(std::strtoul(v, nullptr, 10));
    else if (k == "--batch")
      a.batch = static_cast<uint32_t>(std::strtoul(v, nullptr, 10));
    else if (k == "--steps")
      a.steps = static_cast<uint32_t>(std::strtoul(v, nullptr, 10));
    else if (k == "--work-ms")
      a.work_ms = std::strtod(v, nullptr);
    else {
      std::fprintf(stderr, "bench_loader: unknown option %s\n", argv[i]);
      std::exit(2);
    }
  }
  if (a.tokens == 0 || a.shard_tokens == 0 || a.seq_len < 2 || a.batch == 0 || a.steps == 0) {
    std::fprintf(stderr, "bench_loader: sizes must be positive\n");
    std::exit(2);
  }
  return a;
}

void writeShards(const std::string& dir, const Args& a) {
  constexpr uint32_t kVocab = 50257;  // GPT-2's
  std::mt19937_64 rng(1);
  uint64_t left = a.tokens;
  for (int k = 0; left > 0; ++k) {
    kdgrid::TokenShard shard;
    shard.vocab_size = kVocab;
    shard.eot_token = kVocab - 1;
    shard.tokenizer_sha256 = std::string(64, '0');
    const uint64_t n = std::min(left, a.shard_tokens);
    shard.tokens.resize(n);
    for (auto& t : shard.tokens) t = static_cast<uint32_t>(rng() % (kVocab - 1));
    // Documents of 1000 tokens, each ending with EOT.
    shard.doc_offsets.push_back(0);
    for (uint64_t end = 1000; end < n; end += 1000) {
      shard.tokens[end - 1] = shard.eot_token;
      shard.doc_offsets.push_back(end);
    }
    shard.tokens[n - 1] = shard.eot_token;
    shard.doc_offsets.push_back(n);
    char name[32];
    std::snprintf(name, sizeof(name), "/shard_%04d.h5", k);
    kdgrid::writeTokenShard(dir + name, shard);
    left -= n;
  }
}

void run(const std::string& dir, const Args& a, bool prefetch) {
  kdgrid::LoaderConfig c;
  c.sources = {{dir, 1.0}};
  c.seq_len = a.seq_len;
  c.micro_batch = a.batch;
  c.seed = 1;
  c.prefetch = prefetch;
  kdgrid::DataLoader loader(c, {});
  double wait_s = 0;
  const auto start = Clock::now();
  for (uint32_t s = 0; s < a.steps; ++s) {
    const auto t0 = Clock::now();
    const kdgrid::StepBatch b = loader.next();
    wait_s += std::chrono::duration<double>(Clock::now() - t0).count();
    if (b.tokens.empty()) std::abort();
    if (a.work_ms > 0)
      std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(a.work_ms));
  }
  const double total_s = std::chrono::duration<double>(Clock::now() - start).count();
  const double tokens = double(a.steps) * a.batch * a.seq_len;
  std::printf(
      "prefetch=%-3s steps=%u batch=%u seq_len=%u work_ms=%.1f: %.3f s total, "
      "%.2f M tokens/s overall, next() waited %.3f s (%.2f M tokens/s while waiting)\n",
      prefetch ? "on" : "off", a.steps, a.batch, a.seq_len, a.work_ms, total_s,
      tokens / total_s / 1e6, wait_s, wait_s > 0 ? tokens / wait_s / 1e6 : 0.0);
}

}  // namespace

int main(int argc, char** argv) {
  kdgrid::MpiSession mpi(&argc, &argv);
  const Args a = parseArgs(argc, argv);
  namespace fs = std::filesystem;
  const fs::path dir =
      fs::temp_directory_path() / ("kdgrid-loader-bench-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const auto t0 = Clock::now();
  writeShards(dir.string(), a);
  std::printf("wrote %.1f M synthetic tokens in shards of %.1f M (%.2f s)\n", a.tokens / 1e6,
              a.shard_tokens / 1e6, std::chrono::duration<double>(Clock::now() - t0).count());
  run(dir.string(), a, false);
  run(dir.string(), a, true);
  std::error_code ec;
  fs::remove_all(dir, ec);
  return 0;
}
