#include "data/documents.h"

namespace kdgrid {

std::vector<std::string_view> splitDocuments(std::string_view text) {
  std::vector<std::string_view> docs;
  size_t doc_begin = std::string_view::npos;  // start of the document being collected
  size_t pos = 0;
  while (pos < text.size()) {
    size_t newline = text.find('\n', pos);
    const size_t line_end = newline == std::string_view::npos ? text.size() : newline + 1;
    const std::string_view content =
        text.substr(pos, (newline == std::string_view::npos ? text.size() : newline) - pos);
    const bool blank = content.empty() || content == "\r";
    if (blank) {
      if (doc_begin != std::string_view::npos)
        docs.push_back(text.substr(doc_begin, pos - doc_begin));
      doc_begin = std::string_view::npos;
    } else if (doc_begin == std::string_view::npos) {
      doc_begin = pos;
    }
    pos = line_end;
  }
  if (doc_begin != std::string_view::npos) docs.push_back(text.substr(doc_begin));
  return docs;
}

}  // namespace kdgrid
