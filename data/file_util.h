// Whole-file reads and atomic writes for the small files of the data layer (tokenizer JSON,
// GPT-2 vocab/merges). Errors are UsageErrors naming the file.
#pragma once

#include <string>
#include <string_view>

namespace kdgrid {

// The bytes of a regular file. `what` names it in errors, e.g. "tokenizer file".
std::string readWholeFile(const std::string& path, std::string_view what);

// Writes `bytes` to `path` atomically: a temporary file next to it, fsync, rename. A reader
// sees either the old file or the complete new one, never a partial write.
void writeFileAtomically(const std::string& path, std::string_view bytes, std::string_view what);

}  // namespace kdgrid
