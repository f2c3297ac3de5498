// Token shards whose windows can be recognised: the token at global offset o of source s is
// s * kSourceStride + o, so a window's first token names its source and window, and the rest
// of the window must follow it consecutively.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "data/shards.h"

namespace kdgrid::test {

inline constexpr uint32_t kLoaderVocab = 1u << 20;   // stored as uint32: no wrap-around
inline constexpr uint32_t kSourceStride = 1u << 16;  // tokens per source at most
inline constexpr char kLoaderSha[] =
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

// Writes `dir`/shard_NNN.h5 holding `shard_tokens[k]` tokens each, as documents of up to 10
// tokens (the last token of each document is whatever the counter gives: the loader does not
// look at document boundaries).
inline void writeRecognisableSource(const std::string& dir, uint32_t source,
                                    const std::vector<uint64_t>& shard_tokens,
                                    uint32_t vocab_size = kLoaderVocab,
                                    const std::string& sha = kLoaderSha) {
  std::filesystem::create_directories(dir);
  uint64_t offset = 0;
  for (size_t k = 0; k < shard_tokens.size(); ++k) {
    TokenShard shard;
    shard.vocab_size = vocab_size;
    shard.eot_token = vocab_size - 1;
    shard.tokenizer_sha256 = sha;
    shard.doc_offsets.push_back(0);
    for (uint64_t t = 0; t < shard_tokens[k]; ++t) {
      shard.tokens.push_back(
          static_cast<uint32_t>((source * kSourceStride + offset++) % vocab_size));
      if (shard.tokens.size() % 10 == 0) shard.doc_offsets.push_back(shard.tokens.size());
    }
    if (shard.doc_offsets.back() != shard.tokens.size())
      shard.doc_offsets.push_back(shard.tokens.size());
    char name[32];
    std::snprintf(name, sizeof(name), "/shard_%03zu.h5", k);
    writeTokenShard(dir + name, shard);
  }
}

struct WindowId {
  uint32_t source = 0;
  uint64_t window = 0;
  auto operator<=>(const WindowId&) const = default;
};

// Which window a row of seq_len tokens is; records a test failure if the row is not one.
inline WindowId identifyWindow(const uint32_t* row, uint32_t seq_len) {
  WindowId id{row[0] / kSourceStride, (row[0] % kSourceStride) / seq_len};
  EXPECT_EQ(row[0] % kSourceStride % seq_len, 0u) << "row does not start on a window boundary";
  for (uint32_t k = 1; k < seq_len; ++k) {
    if (row[k] != row[0] + k) {
      ADD_FAILURE() << "row starting with " << row[0] << " breaks at position " << k;
      break;
    }
  }
  return id;
}

// The windows of a batch of rows, in order.
inline std::vector<WindowId> identifyWindows(const std::vector<uint32_t>& tokens,
                                             uint32_t seq_len) {
  std::vector<WindowId> ids;
  EXPECT_EQ(tokens.size() % seq_len, 0u);
  for (size_t r = 0; r + seq_len <= tokens.size(); r += seq_len) {
    ids.push_back(identifyWindow(tokens.data() + r, seq_len));
  }
  return ids;
}

}  // namespace kdgrid::test
