// GPT-2's pre-tokeniser: the text is cut into pieces (words with their leading space,
// numbers, punctuation runs, whitespace runs, English contractions) by GPT-2's regular
// expression; BPE then merges within each piece only.
#pragma once

#include <functional>
#include <memory>
#include <string_view>

namespace kdgrid {

// The pattern of GPT-2's encoder.py, matched with Unicode letter/number/space classes.
inline constexpr char kGpt2Pattern[] =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// kGpt2Pattern compiled once with PCRE2 (UTF + UCP, JIT when the library has it). Immutable
// after construction: one instance may serve any number of threads.
class Pretokenizer {
 public:
  Pretokenizer();
  ~Pretokenizer();
  Pretokenizer(const Pretokenizer&) = delete;
  Pretokenizer& operator=(const Pretokenizer&) = delete;

  // Calls `piece` for each piece of `text`, in order. The pieces tile `text` exactly: a run of
  // bytes that no pattern item can match (invalid UTF-8, which PCRE2 treats as a barrier)
  // becomes a piece of its own, so any byte string round-trips.
  void forEachPiece(std::string_view text,
                    const std::function<void(std::string_view)>& piece) const;

 private:
  struct Compiled;
  std::unique_ptr<Compiled> compiled_;
};

}  // namespace kdgrid
