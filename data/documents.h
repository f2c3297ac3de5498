// Splitting plain text into documents (DESIGN section 2: `prepare` splits at blank lines).
#pragma once

#include <string_view>
#include <vector>

namespace kdgrid {

// Splits `text` at blank lines. A document is a maximal run of non-blank lines, each kept
// byte for byte with its line ending (the last line may lack one). A blank line is an empty
// line or a lone "\r" (a CRLF file's empty line); one or more of them separate documents and
// are dropped. Nothing else is stripped: a line of spaces is text. No document is empty.
// Returns views into `text`.
std::vector<std::string_view> splitDocuments(std::string_view text);

}  // namespace kdgrid
