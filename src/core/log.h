// Logging: every line goes to stderr prefixed with the world rank; results go to stdout.
#pragma once

#include <fmt/format.h>

#include <cstdio>
#include <string>

namespace kdgrid {

// World rank and size, valid once MpiSession exists (0 and 1 before).
int worldRank();
int worldSize();

void writeLogLine(const std::string& line);

// "[kdgrid r3] message" from whichever rank calls it.
template <typename... Args>
void logRank(fmt::format_string<Args...> format, Args&&... args) {
  writeLogLine(fmt::format("[kdgrid r{}] {}", worldRank(),
                           fmt::format(format, std::forward<Args>(args)...)));
}

// Summaries: printed by world rank 0 only.
template <typename... Args>
void log0(fmt::format_string<Args...> format, Args&&... args) {
  if (worldRank() == 0) writeLogLine(fmt::format("[kdgrid] {}", fmt::format(format, std::forward<Args>(args)...)));
}

}  // namespace kdgrid
