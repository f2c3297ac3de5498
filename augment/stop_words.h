// English function words that perturbation never replaces and never takes synonyms of:
// articles, pronouns, auxiliaries, prepositions, conjunctions and similar words whose WordNet
// "synonyms" would change the grammar rather than the wording ("a" -> "angstrom").
#pragma once

#include <string_view>

namespace kdgrid::augment {

// `lower_word` must be in lower case.
bool isStopWord(std::string_view lower_word);

}  // namespace kdgrid::augment
