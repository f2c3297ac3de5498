#include "augment/segments.h"

#include <algorithm>
#include <array>

#include "src/core/check.h"

namespace kdgrid::augment {
namespace {

bool isBlank(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}
bool isStop(char c) {
  return c == '.' || c == '!' || c == '?';
}
bool isCloser(char c) {
  return c == '"' || c == '\'' || c == ')' || c == ']' || c == '}';
}
bool startsSentence(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '"' || c == '\'' || c == '(' ||
         c == '[';
}
bool isAsciiLetter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// Lower-case abbreviations that end in '.' without ending a sentence. Sorted (binary search).
constexpr std::array<std::string_view, 21> kAbbreviations = {
    "capt", "cf", "co",  "col", "dr", "fig", "gen",  "hon", "inc", "jr", "lt",
    "ltd",  "mr", "mrs", "ms",  "mt", "pp",  "prof", "rev", "sr",  "st"};
static_assert(std::is_sorted(kAbbreviations.begin(), kAbbreviations.end()));

// True when the '.' at doc[stop] follows an initial or a known abbreviation.
bool isAbbreviationStop(std::string_view doc, size_t line_begin, size_t stop) {
  size_t b = stop;
  while (b > line_begin && isAsciiLetter(doc[b - 1])) --b;
  const size_t length = stop - b;
  if (length == 0) return false;
  if (length == 1) return true;  // "J. Smith", "e.g. this"
  if (length > 4) return false;
  std::string lower(doc.substr(b, length));
  for (char& c : lower) c = static_cast<char>(c | 0x20);
  return std::binary_search(kAbbreviations.begin(), kAbbreviations.end(), lower);
}

}  // namespace

Segmentation segmentDocument(std::string_view doc) {
  Segmentation seg;
  size_t gap_begin = 0;
  size_t pos = 0;
  while (pos < doc.size()) {
    size_t line_end = doc.find('\n', pos);
    if (line_end == std::string_view::npos) line_end = doc.size();
    size_t b = pos, e = line_end;
    while (b < e && isBlank(doc[b])) ++b;
    while (e > b && isBlank(doc[e - 1])) --e;
    size_t s = b;
    while (s < e) {
      // Find where the sentence starting at s ends (end) and the next one starts (next).
      size_t end = e, next = e;
      for (size_t i = s; i < e;) {
        if (!isStop(doc[i])) {
          ++i;
          continue;
        }
        size_t j = i + 1;
        while (j < e && isStop(doc[j])) ++j;
        const bool abbreviation = j == i + 1 && doc[i] == '.' && isAbbreviationStop(doc, pos, i);
        while (j < e && isCloser(doc[j])) ++j;
        size_t k = j;
        while (k < e && isBlank(doc[k])) ++k;
        if (k > j && k < e && startsSentence(doc[k]) && !abbreviation) {
          end = j;
          next = k;
          break;
        }
        i = j;
      }
      seg.gaps.push_back(doc.substr(gap_begin, s - gap_begin));
      seg.segments.push_back(doc.substr(s, end - s));
      gap_begin = end;
      s = next;
    }
    pos = line_end < doc.size() ? line_end + 1 : doc.size();
  }
  seg.gaps.push_back(doc.substr(gap_begin));
  return seg;
}

std::string joinSegments(const Segmentation& seg, std::span<const std::string> replacement) {
  KDGRID_CHECK(
      replacement.size() == seg.segments.size() && seg.gaps.size() == seg.segments.size() + 1,
      "joinSegments: {} replacements for {} segments", replacement.size(), seg.segments.size());
  size_t bytes = 0;
  for (auto gap : seg.gaps) bytes += gap.size();
  for (const auto& r : replacement) bytes += r.size();
  std::string out;
  out.reserve(bytes);
  for (size_t i = 0; i < replacement.size(); ++i) {
    out.append(seg.gaps[i]);
    out.append(replacement[i]);
  }
  out.append(seg.gaps.back());
  return out;
}

}  // namespace kdgrid::augment
