#include "src/tensor/backends.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <map>
#include <mutex>

#include "src/core/options.h"
#include "src/tensor/tensor.h"

namespace kdgrid {

namespace {

struct Registry {
  std::mutex mutex;
  std::vector<std::string> order{"cpu"};
  std::map<std::string, BackendFactory> factories;
  std::map<std::string, std::unique_ptr<Backend>> made;
};

Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

void registerBackend(const std::string& name, BackendFactory make) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  KDGRID_CHECK(name != "cpu" && !r.factories.count(name), "backend '{}' registered twice", name);
  r.order.push_back(name);
  r.factories.emplace(name, std::move(make));
}

Backend& backendNamed(const std::string& name) {
  if (name == "cpu") return hostBackend();
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (auto made = r.made.find(name); made != r.made.end()) return *made->second;
  const auto factory = r.factories.find(name);
  if (factory == r.factories.end()) {
    throw OptionError(fmt::format("--device '{}': this binary has {}", name,
                                  fmt::join(r.order, ", ")));
  }
  return *r.made.emplace(name, factory->second()).first->second;
}

std::vector<std::string> backendNames() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  return r.order;
}

}  // namespace kdgrid
