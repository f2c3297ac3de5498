// GPT-2's byte-to-unicode mapping: each of the 256 byte values stands for one printable
// Unicode character (printable Latin-1 bytes for themselves, the rest for U+0100..U+0143), so
// a token's bytes can be written as a JSON string or a line of merges.txt without spaces or
// control characters. vocab.json and merges.txt of GPT-2 use this form.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace kdgrid {

// Token bytes -> their GPT-2 form (UTF-8 text, one character per byte).
std::string bytesToGpt2(std::string_view bytes);

// GPT-2 form -> token bytes; nullopt when `text` is not valid UTF-8 or holds a character
// outside the 256 of the mapping.
std::optional<std::string> gpt2ToBytes(std::string_view text);

}  // namespace kdgrid
