// The `prepare` pipeline: text files (or directories of kdgrid-text shards) -> train and validation
// text shards and token shards (DESIGN sections 2 and 6).
//
// Work on R ranks: every rank reads all inputs (cheap next to encoding) and encodes a
// contiguous, byte-balanced share of the documents (OpenMP threads within the rank). Token
// counts are all-gathered, so every rank computes the same plan: validation documents, shard
// boundaries, and an owner per shard. Each document's tokens travel to its shard's owner,
// which writes that shard's text file and token file. The plan depends on the documents
// alone, so the output files are byte-identical whatever R is.
#include <mpi.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <climits>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <functional>
#include <optional>

#include "data/prepare.h"

#include "data/prepare_inputs.h"
#include "data/prepare_plan.h"
#include "data/shards.h"
#include "data/tokenizer.h"
#include "src/core/agreement.h"
#include "src/core/log.h"

namespace kdgrid {

namespace {

namespace fs = std::filesystem;

// Creates DIR/train and DIR/val; refuses directories that already hold shards, whose stale
// files a later reader would mix with the new ones.
void makeOutputDirs(const std::string& out) {
  for (const char* split : {"train", "val"}) {
    const fs::path dir = fs::path(out) / split;
    std::error_code ec;
    fs::create_directories(dir, ec);
    KDGRID_INPUT_CHECK(!ec && fs::is_directory(dir), "--out: cannot create directory '{}': {}",
                       dir.string(), ec ? ec.message() : "a file is in the way");
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      KDGRID_INPUT_CHECK(entry.path().extension() != ".h5",
                         "--out: '{}' already holds shards ('{}'); remove them or choose another "
                         "--out",
                         dir.string(), entry.path().filename().string());
    }
  }
}

// One output shard: documents [begin, end) of its split's document list.
struct ShardJob {
  int split = 0;       // 0 = train, 1 = val
  uint64_t index = 0;  // within the split
  uint64_t begin = 0, end = 0;
  int owner = 0;  // the rank that writes it
};

struct Plan {
  std::array<std::vector<uint64_t>, 2> docs;  // [split] global document indices, in order
  std::array<uint64_t, 2> tokens{};           // [split] token count
  std::vector<ShardJob> shards;               // train shards, then validation shards
  std::vector<int> doc_owner;                 // [n_docs] rank writing the document's shard
};

Plan makePlan(const std::vector<uint64_t>& counts, uint64_t period, uint64_t shard_tokens,
              int world) {
  Plan plan;
  for (uint64_t d = 0; d < counts.size(); ++d) {
    const int split = isValidationDoc(d, period) ? 1 : 0;
    plan.docs[split].push_back(d);
    plan.tokens[split] += counts[d];
  }
  plan.doc_owner.assign(counts.size(), 0);
  for (int split = 0; split < 2; ++split) {
    std::vector<uint64_t> sizes;
    for (uint64_t d : plan.docs[split]) sizes.push_back(counts[d]);
    const std::vector<uint64_t> bounds = packConsecutive(sizes, shard_tokens);
    for (uint64_t s = 0; s + 1 < bounds.size(); ++s) {
      const int owner = static_cast<int>(plan.shards.size() % static_cast<size_t>(world));
      plan.shards.push_back({split, s, bounds[s], bounds[s + 1], owner});
      for (uint64_t i = bounds[s]; i < bounds[s + 1]; ++i) {
        plan.doc_owner[plan.docs[split][i]] = owner;
      }
    }
  }
  return plan;
}

// Rank r encodes documents [firsts[r], firsts[r + 1]): contiguous ranges of about equal bytes.
std::vector<uint64_t> encodeRanges(const std::vector<std::string_view>& docs, int world) {
  uint64_t total = 0;
  for (auto doc : docs) total += doc.size() + 1;  // +1: an empty document still costs something
  std::vector<uint64_t> firsts(world + 1, docs.size());
  firsts[0] = 0;
  uint64_t seen = 0;
  int rank = 1;
  for (uint64_t d = 0; d < docs.size() && rank < world; ++d) {
    while (rank < world && seen >= total * rank / world) firsts[rank++] = d;
    seen += docs[d].size() + 1;
  }
  return firsts;
}

// Encodes documents [first, last), each followed by the end-of-text token.
void encodeShare(const Tokenizer& tok, const std::vector<std::string_view>& docs, uint64_t first,
                 uint64_t last, std::vector<std::vector<uint32_t>>& doc_tokens) {
  std::exception_ptr error;
#pragma omp parallel for schedule(dynamic, 8)
  for (int64_t d = static_cast<int64_t>(first); d < static_cast<int64_t>(last); ++d) {
    try {
      std::vector<uint32_t> ids = tok.encode(docs[d]);
      ids.push_back(tok.eotToken());
      doc_tokens[d] = std::move(ids);
    } catch (...) {
#pragma omp critical
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

// Sends each encoded document's tokens to the rank owning its shard; afterwards this rank holds
// the tokens of every document it owns (and no others). Messages are cut in pieces of at most
// kPiece tokens so any size fits MPI's int counts.
void exchangeTokens(const std::vector<uint64_t>& firsts, const std::vector<uint64_t>& counts,
                    const std::vector<int>& doc_owner,
                    std::vector<std::vector<uint32_t>>& doc_tokens) {
  constexpr uint64_t kPiece = uint64_t{1} << 28;
  const int world = worldSize(), me = worldRank();
  std::vector<std::vector<uint32_t>> send(world), recv(world);
  for (uint64_t d = firsts[me]; d < firsts[me + 1]; ++d) {
    if (doc_owner[d] == me) continue;
    auto& buf = send[doc_owner[d]];
    buf.insert(buf.end(), doc_tokens[d].begin(), doc_tokens[d].end());
    std::vector<uint32_t>().swap(doc_tokens[d]);
  }
  std::vector<MPI_Request> requests;
  auto post = [&](std::vector<uint32_t>& buf, int peer, bool is_send) {
    for (uint64_t at = 0, piece = 0; at < buf.size(); at += kPiece, ++piece) {
      const int n = static_cast<int>(std::min(kPiece, buf.size() - at));
      MPI_Request request;
      if (is_send) {
        KDGRID_MPI(MPI_Isend(buf.data() + at, n, MPI_UINT32_T, peer, static_cast<int>(piece),
                             MPI_COMM_WORLD, &request));
      } else {
        KDGRID_MPI(MPI_Irecv(buf.data() + at, n, MPI_UINT32_T, peer, static_cast<int>(piece),
                             MPI_COMM_WORLD, &request));
      }
      requests.push_back(request);
    }
  };
  for (int src = 0; src < world; ++src) {
    if (src == me) continue;
    uint64_t n = 0;
    for (uint64_t d = firsts[src]; d < firsts[src + 1]; ++d) {
      if (doc_owner[d] == me) n += counts[d];
    }
    recv[src].resize(n);
    post(recv[src], src, false);
  }
  for (int dst = 0; dst < world; ++dst) {
    if (dst != me) post(send[dst], dst, true);
  }
  KDGRID_MPI(MPI_Waitall(static_cast<int>(requests.size()), requests.data(), MPI_STATUSES_IGNORE));
  for (int src = 0; src < world; ++src) {
    if (src == me) continue;
    uint64_t at = 0;
    for (uint64_t d = firsts[src]; d < firsts[src + 1]; ++d) {
      if (doc_owner[d] != me) continue;
      doc_tokens[d].assign(recv[src].begin() + at, recv[src].begin() + at + counts[d]);
      at += counts[d];
    }
  }
}

// Token counts of all documents: each rank contributes its range.
std::vector<uint64_t> gatherCounts(const std::vector<uint64_t>& firsts,
                                   const std::vector<std::vector<uint32_t>>& doc_tokens) {
  const int world = worldSize(), me = worldRank();
  std::vector<uint64_t> counts(doc_tokens.size());
  std::vector<int> sizes(world), displs(world);
  for (int r = 0; r < world; ++r) {
    sizes[r] = static_cast<int>(firsts[r + 1] - firsts[r]);
    displs[r] = static_cast<int>(firsts[r]);
  }
  std::vector<uint64_t> mine;
  for (uint64_t d = firsts[me]; d < firsts[me + 1]; ++d) mine.push_back(doc_tokens[d].size());
  KDGRID_MPI(MPI_Allgatherv(mine.data(), sizes[me], MPI_UINT64_T, counts.data(), sizes.data(),
                            displs.data(), MPI_UINT64_T, MPI_COMM_WORLD));
  return counts;
}

// Writes one shard's text file and token file (same documents).
void writeShardPair(const std::string& dir, const std::string& name_suffix,
                    const std::vector<uint64_t>& split_docs, const ShardJob& job,
                    const PrepareInputs& in, const Tokenizer& tok,
                    const std::vector<std::vector<uint32_t>>& doc_tokens) {
  TextShard text;
  TokenShard tokens;
  text.offsets = {0};
  tokens.doc_offsets = {0};
  tokens.vocab_size = tok.vocabSize();
  tokens.eot_token = tok.eotToken();
  tokens.tokenizer_sha256 = tok.sha256();
  Provenance provenance;
  provenance.params = in.provenance.params;
  provenance.method_names = in.provenance.method_names;
  for (uint64_t i = job.begin; i < job.end; ++i) {
    const uint64_t d = split_docs[i];
    text.bytes.append(in.docs[d]);
    text.offsets.push_back(text.bytes.size());
    tokens.tokens.insert(tokens.tokens.end(), doc_tokens[d].begin(), doc_tokens[d].end());
    tokens.doc_offsets.push_back(tokens.tokens.size());
    if (!in.provenance.empty()) {
      provenance.source_doc.push_back(in.provenance.source_doc[d]);
      provenance.method.push_back(in.provenance.method[d]);
      if (!in.provenance.source_token_offset.empty()) {
        provenance.source_token_offset.push_back(in.provenance.source_token_offset[d]);
      }
    }
  }
  text.provenance = provenance;
  tokens.provenance = std::move(provenance);
  writeTextShard(dir + "/text_" + name_suffix, text);
  writeTokenShard(dir + "/tokens_" + name_suffix, tokens);
}

}  // namespace

po::options_description prepareOptions(PrepareConfig& c) {
  po::options_description o("Prepare");
  // clang-format off
  o.add_options()
      ("input", po::value(&c.input)->multitoken()->required()->value_name("PATH..."),
       "text files (documents separated by blank lines) or directories of kdgrid-text shards")
      ("tokenizer", po::value(&c.tokenizer)->required()->value_name("FILE"),
       "tokenizer JSON written by `kdgrid tokenizer`")
      ("out", po::value(&c.out)->required()->value_name("DIR"), "writes DIR/train/ and DIR/val/")
      ("val-fraction", valueWithDefault(&c.val_fraction)->value_name("F"),
       "every round(1/F)-th document goes to validation; F in (0, 0.5]")
      ("shard-tokens", po::value(&c.shard_tokens)->default_value(c.shard_tokens)->value_name("N"),
       "a shard takes whole documents until it holds at least N tokens");
  // clang-format on
  return o;
}

void PrepareConfig::validate() const {
  KDGRID_OPTION_CHECK(validationPeriod(val_fraction) >= 2,
                      "--val-fraction {} is outside (0, 0.5] (every round(1/F)-th document goes "
                      "to validation, and both splits must be non-empty)",
                      val_fraction);
  KDGRID_OPTION_CHECK(shard_tokens >= 1, "--shard-tokens {} must be at least 1", shard_tokens);
  KDGRID_OPTION_CHECK(!out.empty(), "--out must name a directory");
}

void prepareShards(const PrepareConfig& opt) {
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  const int world = worldSize(), me = worldRank();
  const uint64_t period = validationPeriod(opt.val_fraction);

  // 1. Inputs, tokenizer and output directories; every rank reads the inputs.
  PrepareInputs in;
  std::optional<Tokenizer> tok;
  agreeOnOutcome([&] {
    in = readPrepareInputs(opt.input, "--input");
    tok = Tokenizer::load(opt.tokenizer);
  });
  const uint64_t n_docs = in.docs.size();
  const uint64_t n_val = n_docs / period;  // documents k-1, 2k-1, ... below n_docs
  KDGRID_OPTION_CHECK(n_val > 0 && n_val < n_docs,
                      "--val-fraction {}: the {} split would be empty ({} documents in the input, "
                      "every {}-th goes to validation)",
                      opt.val_fraction, n_val == 0 ? "validation" : "training", n_docs, period);
  KDGRID_OPTION_CHECK(n_docs < INT_MAX,
                      "--input: {} documents; prepare handles fewer than {} per run", n_docs,
                      INT_MAX);
  log0("prepare: {} documents, {:.2f} MB from {} text files and {} text shards ({:.2f} s)", n_docs,
       in.input_bytes / 1e6, in.num_text_files, in.num_text_shards, elapsed());
  agreeOnOutcome([&] {
    if (me == 0) makeOutputDirs(opt.out);
  });

  // 2. Encode this rank's share; 3. agree on every document's token count.
  std::vector<std::vector<uint32_t>> doc_tokens(n_docs);
  const std::vector<uint64_t> firsts = encodeRanges(in.docs, world);
  encodeShare(*tok, in.docs, firsts[me], firsts[me + 1], doc_tokens);
  const std::vector<uint64_t> counts = gatherCounts(firsts, doc_tokens);
  log0("prepare: encoded ({:.2f} s)", elapsed());

  // 4. The plan, the same on every rank; 5. tokens to the shards' owners; 6. write.
  const Plan plan = makePlan(counts, period, static_cast<uint64_t>(opt.shard_tokens), world);
  exchangeTokens(firsts, counts, plan.doc_owner, doc_tokens);
  const size_t digits = std::max<size_t>(5, fmt::format("{}", plan.shards.size()).size());
  agreeOnOutcome([&] {
    for (const ShardJob& job : plan.shards) {
      if (job.owner != me) continue;
      const std::string dir = (fs::path(opt.out) / (job.split == 0 ? "train" : "val")).string();
      writeShardPair(dir, fmt::format("{:0{}}.h5", job.index, digits), plan.docs[job.split], job,
                     in, *tok, doc_tokens);
    }
  });

  const double seconds = elapsed();
  if (me == 0) {
    for (int split = 0; split < 2; ++split) {
      const auto shards = std::count_if(plan.shards.begin(), plan.shards.end(),
                                        [&](const ShardJob& j) { return j.split == split; });
      std::printf("prepare: %-5s %10zu docs %12llu tokens %5lld shards -> %s\n",
                  split == 0 ? "train" : "val", plan.docs[split].size(),
                  static_cast<unsigned long long>(plan.tokens[split]),
                  static_cast<long long>(shards),
                  (fs::path(opt.out) / (split == 0 ? "train" : "val")).c_str());
    }
    std::printf(
        "prepare: %.2f MB of text in %.2f s = %.2f MB/s on %d rank%s (tokenizer sha256 %s)\n",
        in.input_bytes / 1e6, seconds, in.input_bytes / 1e6 / seconds, world, world == 1 ? "" : "s",
        tok->sha256().c_str());
    std::fflush(stdout);
  }
}

}  // namespace kdgrid
