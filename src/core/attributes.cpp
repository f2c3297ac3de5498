#include "src/core/attributes.h"

#include <fmt/format.h>

namespace kdgrid {

std::string attributeText(const AttributeValue& value) {
  return std::visit([](const auto& v) { return fmt::format("{}", v); }, value);
}

const AttributeValue* findAttribute(const Attributes& attributes, std::string_view name) {
  for (const Attribute& a : attributes) {
    if (a.name == name) return &a.value;
  }
  return nullptr;
}

}  // namespace kdgrid
