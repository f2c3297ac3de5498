#include "augment/stop_words.h"

#include <algorithm>
#include <array>

namespace kdgrid::augment {
namespace {

// Sorted, for binary search.
constexpr std::array<std::string_view, 136> kStopWords = {
    "a",       "about",   "above",     "after",  "again",   "against",    "all",      "also",
    "am",      "an",      "and",       "any",    "are",     "as",         "at",       "be",
    "because", "been",    "before",    "being",  "below",   "between",    "both",     "but",
    "by",      "can",     "could",     "did",    "do",      "does",       "doing",    "don",
    "down",    "during",  "each",      "few",    "for",     "from",       "further",  "had",
    "has",     "have",    "having",    "he",     "her",     "here",       "hers",     "herself",
    "him",     "himself", "his",       "how",    "i",       "if",         "in",       "into",
    "is",      "it",      "its",       "itself", "just",    "may",        "me",       "might",
    "more",    "most",    "must",      "my",     "myself",  "no",         "nor",      "not",
    "now",     "of",      "off",       "on",     "once",    "only",       "or",       "other",
    "our",     "ours",    "ourselves", "out",    "over",    "own",        "s",        "same",
    "shall",   "she",     "should",    "so",     "some",    "such",       "t",        "than",
    "that",    "the",     "their",     "theirs", "them",    "themselves", "then",     "there",
    "these",   "they",    "this",      "those",  "through", "to",         "too",      "under",
    "until",   "up",      "upon",      "very",   "was",     "we",         "were",     "what",
    "when",    "where",   "which",     "while",  "who",     "whom",       "whose",    "why",
    "will",    "with",    "would",     "you",    "your",    "yours",      "yourself", "yourselves"};
static_assert(std::is_sorted(kStopWords.begin(), kStopWords.end()));

}  // namespace

bool isStopWord(std::string_view lower_word) {
  return std::binary_search(kStopWords.begin(), kStopWords.end(), lower_word);
}

}  // namespace kdgrid::augment
