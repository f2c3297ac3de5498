#include "src/train/metrics.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "src/core/check.h"

namespace kdgrid {

MetricsWriter::MetricsWriter(const std::string& run_dir) : run_dir_(run_dir) {
  const std::string path = run_dir + "/metrics.jsonl";
  jsonl_ = std::fopen(path.c_str(), "a");
  KDGRID_INPUT_CHECK(jsonl_ != nullptr, "cannot open {} for appending: {}", path, std::strerror(errno));
}

MetricsWriter::~MetricsWriter() {
  if (jsonl_) std::fclose(jsonl_);
}

void MetricsWriter::write(const nlohmann::json& record) {
  const std::string line = record.dump() + "\n";
  KDGRID_CHECK(std::fwrite(line.data(), 1, line.size(), jsonl_) == line.size() && std::fflush(jsonl_) == 0,
               "writing {}/metrics.jsonl: {}", run_dir_, std::strerror(errno));

  const std::string prom = run_dir_ + "/metrics.prom";
  const std::string tmp = prom + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    for (const auto& [key, value] : record.items()) {
      if (!value.is_number()) continue;
      out << "# TYPE kdgrid_" << key << " gauge\n"
          << "kdgrid_" << key << " " << value.dump() << "\n";
    }
    KDGRID_CHECK(out.good(), "writing {}", tmp);
  }
  std::filesystem::rename(tmp, prom);  // atomic on POSIX: a scraper never sees half a file
}

}  // namespace kdgrid
