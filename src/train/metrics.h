// Run-directory metrics (DESIGN section 3): metrics.jsonl (one JSON object per optimizer
// step, flushed) and metrics.prom (Prometheus text, rewritten atomically each step).
// Written by global rank 0 only.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdio>
#include <string>

namespace kdgrid {

class MetricsWriter {
 public:
  explicit MetricsWriter(const std::string& run_dir);  // appends to metrics.jsonl
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;

  // Writes one line and rewrites metrics.prom with every numeric field as kdgrid_<name>.
  void write(const nlohmann::json& record);

 private:
  std::string run_dir_;
  FILE* jsonl_ = nullptr;
};

}  // namespace kdgrid
