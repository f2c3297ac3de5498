#include "augment/method.h"

#include <array>
#include <utility>

namespace kdgrid::augment {
namespace {

constexpr std::array<std::pair<Method, std::string_view>, 3> kNames = {{
    {Method::kBacktranslate, "backtranslate"},
    {Method::kPerturb, "perturb"},
    {Method::kFgsm, "fgsm"},
}};

}  // namespace

std::string_view methodName(Method method) {
  for (const auto& [m, name] : kNames) {
    if (m == method) return name;
  }
  return "unknown";
}

std::optional<Method> parseMethod(std::string_view name) {
  for (const auto& [m, n] : kNames) {
    if (n == name) return m;
  }
  return std::nullopt;
}

}  // namespace kdgrid::augment
