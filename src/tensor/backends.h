// The backends a binary can run on, by name (--device): "cpu" always (hostBackend()); a test
// executable registers its guarded device (kernels/guarded/), a CUDA build its GPU backend.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kernels/backend.h"

namespace kdgrid {

using BackendFactory = std::function<std::unique_ptr<Backend>()>;

// Makes `name` available to backendNamed(). Call before any backendNamed() (at start-up).
void registerBackend(const std::string& name, BackendFactory make);

// The process's backend called `name`, made on first use and kept until exit. Throws
// OptionError naming --device and the registered backends for an unknown name.
Backend& backendNamed(const std::string& name);

// Registered names, "cpu" first.
std::vector<std::string> backendNames();

}  // namespace kdgrid
