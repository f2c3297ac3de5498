#include "checkpoints/hf/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>

#include "data/file_util.h"
#include "src/core/check.h"
#include "src/core/dtype.h"

namespace kdgrid {
namespace {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; add byte swapping for this host");

// The reference implementation refuses headers above 100 MB; so do we (before allocating).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr uint64_t kAlignment = 8;

size_t elementSize(StDType t) {
  return t == StDType::kF32 ? 4 : 2;
}

bool parseDType(const std::string& s, StDType& out) {
  if (s == "F32")
    out = StDType::kF32;
  else if (s == "F16")
    out = StDType::kF16;
  else if (s == "BF16")
    out = StDType::kBF16;
  else
    return false;
  return true;
}

uint64_t readLittleEndian64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

const char* stDTypeName(StDType t) {
  return t == StDType::kF32 ? "F32" : t == StDType::kF16 ? "F16" : "BF16";
}

int64_t SafetensorsEntry::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

void SafetensorsWriter::add(const std::string& name, std::vector<int64_t> shape,
                            std::vector<float> values) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  KDGRID_CHECK(n == static_cast<int64_t>(values.size()), "tensor {}: shape holds {} values, got {}",
               name, n, values.size());
  tensors_.push_back({name, std::move(shape), std::move(values)});
}

void SafetensorsWriter::setMetadata(const std::string& key, const std::string& value) {
  metadata_[key] = value;
}

void SafetensorsWriter::write(const std::string& path) const {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  uint64_t offset = 0;
  for (const Pending& t : tensors_) {
    const uint64_t bytes = t.values.size() * sizeof(float);
    header[t.name] = {
        {"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;  // float32 tensors keep every later one 4-byte aligned
  }
  std::string text = header.dump();
  // Pad so that the data section (and so the first tensor) starts 8-byte aligned.
  text.append((kAlignment - (8 + text.size()) % kAlignment) % kAlignment, ' ');
  std::string file(8, '\0');
  const uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) file[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  file += text;
  file.reserve(file.size() + offset);
  for (const Pending& t : tensors_) {
    file.append(reinterpret_cast<const char*>(t.values.data()), t.values.size() * sizeof(float));
  }
  writeFileAtomically(path, file, "safetensors file");
}

SafetensorsReader::SafetensorsReader(const std::string& path) : path_(path) {
  std::error_code ec;
  const uint64_t file_size = std::filesystem::file_size(path, ec);
  KDGRID_INPUT_CHECK(!ec, "{}: cannot read safetensors file: {}", path, ec.message());
  KDGRID_INPUT_CHECK(file_size >= 8, "{}: {} bytes, too short for the 8-byte header length", path,
                     file_size);
  std::ifstream in(path, std::ios::binary);
  KDGRID_INPUT_CHECK(in.good(), "{}: cannot open safetensors file", path);
  unsigned char len_bytes[8];
  in.read(reinterpret_cast<char*>(len_bytes), 8);
  KDGRID_INPUT_CHECK(in.good(), "{}: cannot read the header length", path);
  const uint64_t header_len = readLittleEndian64(len_bytes);
  KDGRID_INPUT_CHECK(header_len <= file_size - 8 && header_len <= kMaxHeaderBytes,
                     "{}: bad safetensors header length {} (file has {} bytes after the 8-byte "
                     "length; at most {} allowed)",
                     path, header_len, file_size - 8, kMaxHeaderBytes);
  std::string text(header_len, '\0');
  in.read(text.data(), static_cast<std::streamsize>(header_len));
  KDGRID_INPUT_CHECK(in.good(), "{}: cannot read the {}-byte header", path, header_len);
  data_start_ = 8 + header_len;
  const uint64_t data_size = file_size - data_start_;

  const nlohmann::json header = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  KDGRID_INPUT_CHECK(!header.is_discarded() && header.is_object(),
                     "{}: the safetensors header is not a JSON object", path);
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      KDGRID_INPUT_CHECK(value.is_object(), "{}: __metadata__ is not an object", path);
      for (const auto& [k, v] : value.items()) {
        KDGRID_INPUT_CHECK(v.is_string(), "{}: __metadata__ value of '{}' is not a string", path,
                           k);
        metadata_[k] = v.get<std::string>();
      }
      continue;
    }
    KDGRID_INPUT_CHECK(value.is_object() && value.contains("dtype") && value.contains("shape") &&
                           value.contains("data_offsets"),
                       "{}: tensor {}: needs dtype, shape and data_offsets", path, name);
    SafetensorsEntry e;
    e.name = name;
    const nlohmann::json& dtype = value["dtype"];
    KDGRID_INPUT_CHECK(dtype.is_string(), "{}: tensor {}: dtype is not a string", path, name);
    KDGRID_INPUT_CHECK(parseDType(dtype.get<std::string>(), e.dtype),
                       "{}: tensor {}: dtype {} is not supported (F32, F16 or BF16)", path, name,
                       dtype.dump());
    const nlohmann::json& shape = value["shape"];
    KDGRID_INPUT_CHECK(shape.is_array(), "{}: tensor {}: shape is not an array", path, name);
    // Each dimension and the running product stay below the data size: no overflow.
    uint64_t numel = 1;
    for (const nlohmann::json& d : shape) {
      KDGRID_INPUT_CHECK(d.is_number_unsigned() || (d.is_number_integer() && d.get<int64_t>() >= 0),
                         "{}: tensor {}: shape {} has a dimension that is not a non-negative "
                         "integer",
                         path, name, shape.dump());
      const uint64_t dim = d.get<uint64_t>();
      KDGRID_INPUT_CHECK(dim <= data_size && (dim == 0 || numel <= data_size / dim),
                         "{}: tensor {}: shape {} holds more elements than the file has bytes",
                         path, name, shape.dump());
      numel *= dim;
      e.shape.push_back(static_cast<int64_t>(dim));
    }
    const nlohmann::json& offsets = value["data_offsets"];
    KDGRID_INPUT_CHECK(offsets.is_array() && offsets.size() == 2 &&
                           offsets[0].is_number_unsigned() && offsets[1].is_number_unsigned(),
                       "{}: tensor {}: data_offsets {} is not two non-negative integers", path,
                       name, offsets.dump());
    e.begin = offsets[0].get<uint64_t>();
    e.end = offsets[1].get<uint64_t>();
    KDGRID_INPUT_CHECK(e.begin <= e.end && e.end <= data_size,
                       "{}: tensor {}: data_offsets [{}, {}] outside the {}-byte data section "
                       "(file truncated?)",
                       path, name, e.begin, e.end, data_size);
    KDGRID_INPUT_CHECK(e.end - e.begin == numel * elementSize(e.dtype),
                       "{}: tensor {}: shape {} of {} needs {} bytes but data_offsets [{}, {}] "
                       "hold {}",
                       path, name, shape.dump(), stDTypeName(e.dtype), numel * elementSize(e.dtype),
                       e.begin, e.end, e.end - e.begin);
    entries_.push_back(std::move(e));
  }
  std::sort(entries_.begin(), entries_.end(),
            [](const SafetensorsEntry& a, const SafetensorsEntry& b) {
              return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
            });
  uint64_t covered = 0;
  for (const SafetensorsEntry& e : entries_) {
    KDGRID_INPUT_CHECK(e.begin == covered,
                       "{}: tensor {}: data_offsets [{}, {}] {} the previous tensor, which ends "
                       "at {}",
                       path, e.name, e.begin, e.end,
                       e.begin < covered ? "overlap" : "leave a hole after", covered);
    covered = e.end;
  }
  KDGRID_INPUT_CHECK(covered == data_size,
                     "{}: the tensors cover {} bytes but the data section has {} (trailing "
                     "bytes or a wrong header)",
                     path, covered, data_size);
}

const SafetensorsEntry* SafetensorsReader::find(const std::string& name) const {
  for (const SafetensorsEntry& e : entries_) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

std::vector<float> SafetensorsReader::readFloat32(const SafetensorsEntry& entry) const {
  const uint64_t bytes = entry.end - entry.begin;  // validated against the file size
  std::string raw(bytes, '\0');
  std::ifstream in(path_, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(data_start_ + entry.begin));
  in.read(raw.data(), static_cast<std::streamsize>(bytes));
  KDGRID_INPUT_CHECK(in.good() || bytes == 0, "{}: tensor {}: cannot read {} bytes at offset {}",
                     path_, entry.name, bytes, data_start_ + entry.begin);
  const size_t n = bytes / elementSize(entry.dtype);
  std::vector<float> out(n);
  if (entry.dtype == StDType::kF32) {
    std::memcpy(out.data(), raw.data(), bytes);
  } else {
    for (size_t i = 0; i < n; ++i) {
      uint16_t bits;
      std::memcpy(&bits, raw.data() + 2 * i, 2);
      if (entry.dtype == StDType::kF16) {
        f16 h;
        h.bits = bits;
        out[i] = static_cast<float>(h);
      } else {
        bf16 b;
        b.bits = bits;
        out[i] = static_cast<float>(b);
      }
    }
  }
  return out;
}

}  // namespace kdgrid
