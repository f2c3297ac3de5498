// Documents cut into sentences ("segments"): the units back-translation and perturbation
// rewrite. The text around the segments (line breaks and a CR before them, indentation,
// trailing blanks, the spaces between two sentences of a line) is kept verbatim, so a
// document comes back with its layout when every segment is replaced.
//
// Rules: lines are cut at '\n'. Within a line, a sentence ends after a run of '.', '!' or '?'
// (and any closing quotes or brackets after it) when blanks follow and then an ASCII upper-case
// letter, a digit or an opening quote or bracket, unless the stop is a '.' after a single
// letter (an initial, "e.g.") or after a common abbreviation ("Mr.", "Dr.", "vs."). Blanks are
// space, tab, CR, VT and FF. A segment is never empty, never holds '\n' and never starts or
// ends with a blank.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kdgrid::augment {

struct Segmentation {
  std::vector<std::string_view> segments;  // [n] views into the document
  std::vector<std::string_view> gaps;      // [n + 1]: gaps[i] precedes segments[i]; gaps[n] ends
};

Segmentation segmentDocument(std::string_view doc);

// gaps[0] + replacement[0] + gaps[1] + ... + replacement[n-1] + gaps[n]; one replacement per
// segment.
std::string joinSegments(const Segmentation& seg, std::span<const std::string> replacement);

}  // namespace kdgrid::augment
