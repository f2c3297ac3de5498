// Named scalar metadata, such as a model's hyperparameters: what a checkpoint stores as the
// attributes of its /model group without knowing the model (DESIGN section 5). Each model
// family converts its configuration to and from this form (src/model/config.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace kdgrid {

// HDF5 stores these as int64, float64 and variable-length UTF-8 strings.
using AttributeValue = std::variant<int64_t, double, std::string>;

struct Attribute {
  std::string name;
  AttributeValue value;
};

// In the order written; names are unique.
using Attributes = std::vector<Attribute>;

// "12", "10000", "gpt2": integers in decimal, floats in shortest round-trip form.
std::string attributeText(const AttributeValue& value);

// The attribute called `name`, or null.
const AttributeValue* findAttribute(const Attributes& attributes, std::string_view name);

}  // namespace kdgrid
