#include "data/byte_unicode.h"

#include <array>
#include <cstdint>

namespace kdgrid {
namespace {

// Code point for each byte value. Bytes '!'..'~', 0xA1..0xAC and 0xAE..0xFF stand for
// themselves; the other 68 (controls, space, DEL, 0x80..0xA0, soft hyphen) take U+0100 onward
// in increasing byte order, as in GPT-2's encoder.py.
struct ByteUnicodeTables {
  std::array<char16_t, 256> code_of_byte{};
  std::array<int16_t, 0x144> byte_of_code{};  // -1 where a code point is not in the mapping

  constexpr ByteUnicodeTables() {
    for (auto& b : byte_of_code) b = -1;
    int next = 0x100;
    for (int b = 0; b < 256; ++b) {
      const bool self = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      const int code = self ? b : next++;
      code_of_byte[b] = static_cast<char16_t>(code);
      byte_of_code[code] = static_cast<int16_t>(b);
    }
  }
};

constexpr ByteUnicodeTables kTables;
static_assert(kTables.code_of_byte[' '] == 0x120, "space is 'Ġ' (U+0120) in GPT-2's mapping");
static_assert(kTables.code_of_byte['\n'] == 0x10A, "newline is 'Ċ' (U+010A)");

}  // namespace

std::string bytesToGpt2(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) {
    const unsigned code = kTables.code_of_byte[b];
    if (code < 0x80) {
      out.push_back(static_cast<char>(code));
    } else {  // all codes are < 0x800: two UTF-8 bytes
      out.push_back(static_cast<char>(0xC0 | (code >> 6)));
      out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
    }
  }
  return out;
}

std::optional<std::string> gpt2ToBytes(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const auto c0 = static_cast<unsigned char>(text[i]);
    unsigned code;
    if (c0 < 0x80) {
      code = c0;
      i += 1;
    } else if ((c0 & 0xE0) == 0xC0 && i + 1 < text.size() &&
               (static_cast<unsigned char>(text[i + 1]) & 0xC0) == 0x80) {
      code = ((c0 & 0x1Fu) << 6) | (static_cast<unsigned char>(text[i + 1]) & 0x3Fu);
      if (code < 0x80) return std::nullopt;  // overlong encoding
      i += 2;
    } else {
      return std::nullopt;  // invalid UTF-8, or a 3-4 byte character (none is in the mapping)
    }
    if (code >= kTables.byte_of_code.size() || kTables.byte_of_code[code] < 0) return std::nullopt;
    out.push_back(static_cast<char>(kTables.byte_of_code[code]));
  }
  return out;
}

}  // namespace kdgrid
