// The augmentation methods and their provenance codes (DESIGN section 6: /provenance/method).
//
// The codes are fixed, not numbered per run, so shards written by different `kdgrid augment`
// runs agree on them and `prepare` can read them side by side. Every shard names all codes
// (kMethodCodes), including methods that did not write it.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace kdgrid::augment {

enum class Method : uint8_t {
  kBacktranslate = 0,  // text -> text: round trip through a pivot language
  kPerturb = 1,        // text -> text: EDA's four word operations
  kFgsm = 2,           // tokens -> tokens: adversarial input embeddings (needs a checkpoint)
};

// The value of the `codes` attribute of /provenance/method.
inline constexpr char kMethodCodes[] = "0=backtranslate,1=perturb,2=fgsm";

std::string_view methodName(Method method);
// "backtranslate" -> kBacktranslate, ...; nullopt for an unknown name.
std::optional<Method> parseMethod(std::string_view name);

}  // namespace kdgrid::augment
