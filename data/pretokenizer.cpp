#include "data/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <array>

#include "src/core/check.h"

namespace kdgrid {

namespace {

std::string pcre2Message(int code) {
  std::array<PCRE2_UCHAR, 256> buf{};
  pcre2_get_error_message(code, buf.data(), buf.size());
  return reinterpret_cast<const char*>(buf.data());
}

}  // namespace

struct Pretokenizer::Compiled {
  pcre2_code* code = nullptr;
  ~Compiled() { pcre2_code_free(code); }
};

Pretokenizer::Pretokenizer() : compiled_(std::make_unique<Compiled>()) {
  int error = 0;
  PCRE2_SIZE error_offset = 0;
  // MATCH_INVALID_UTF (implies UTF): invalid sequences never match and act as barriers instead
  // of making pcre2_match fail; UCP: \s, \p{L}, \p{N} use Unicode properties.
  compiled_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(kGpt2Pattern), PCRE2_ZERO_TERMINATED,
                                  PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error,
                                  &error_offset, nullptr);
  KDGRID_CHECK(compiled_->code != nullptr, "PCRE2 cannot compile GPT-2's pattern at offset {}: {}",
               error_offset, pcre2Message(error));
  uint32_t have_jit = 0;
  pcre2_config(PCRE2_CONFIG_JIT, &have_jit);
  // Without JIT (or if it fails, e.g. no executable memory) the interpreter gives the same
  // matches, only slower.
  if (have_jit) pcre2_jit_compile(compiled_->code, PCRE2_JIT_COMPLETE);
}

Pretokenizer::~Pretokenizer() = default;

void Pretokenizer::forEachPiece(std::string_view text,
                                const std::function<void(std::string_view)>& piece) const {
  if (text.empty()) return;
  using MatchData = std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)>;
  MatchData match(pcre2_match_data_create_from_pattern(compiled_->code, nullptr),
                  &pcre2_match_data_free);
  KDGRID_CHECK(match != nullptr, "PCRE2: out of memory for match data");
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match.get());
  size_t pos = 0;
  while (pos < text.size()) {
    const int rc = pcre2_match(compiled_->code, subject, text.size(), pos, 0, match.get(), nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) {  // only unmatchable (invalid UTF-8) bytes are left
      piece(text.substr(pos));
      return;
    }
    KDGRID_CHECK(rc > 0, "PCRE2 match failed at byte {} of {}: {}", pos, text.size(),
                 pcre2Message(rc));
    const size_t start = ovector[0];
    const size_t end = ovector[1];
    // Every alternative consumes at least one character, so end > start >= pos.
    KDGRID_CHECK(start >= pos && end > start && end <= text.size(),
                 "PCRE2 returned match [{}, {}) from offset {}", start, end, pos);
    if (start > pos) piece(text.substr(pos, start - pos));  // skipped invalid UTF-8
    piece(text.substr(start, end - start));
    pos = end;
  }
}

}  // namespace kdgrid
