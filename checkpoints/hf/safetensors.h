// The safetensors file format (Hugging Face), written and read here without the Rust/Python
// library:
//
//   [8 bytes]  N, the header length, unsigned 64-bit little-endian
//   [N bytes]  a UTF-8 JSON object: {"__metadata__": {str: str} (optional),
//                NAME: {"dtype": "F32"|"F16"|"BF16"|..., "shape": [d0, d1, ...],
//                       "data_offsets": [begin, end]}, ...}
//              (the writer pads it with spaces to a multiple of 8 bytes so that every tensor
//              of the data section starts 8-byte aligned in the file)
//   [rest]     the data section: each tensor's row-major little-endian elements at
//              [begin, end) relative to the section's start; the tensors tile the section
//              exactly (no overlap, no hole, nothing after the last), as the reference
//              implementation requires.
//
// Reading validates all of that against the file size before any tensor is read, so no
// allocation ever follows an unchecked header value; every problem is a UsageError naming the
// file and, where there is one, the tensor.
#pragma once

#include <cstdint>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace kdgrid {

// Element types kdgrid reads (and F32, which it writes). Others are refused by name.
enum class StDType : uint8_t { kF32, kF16, kBF16 };

struct SafetensorsEntry {
  std::string name;
  StDType dtype = StDType::kF32;
  std::vector<int64_t> shape;   // empty = a scalar (one element)
  uint64_t begin = 0, end = 0;  // byte offsets in the data section
  int64_t numel() const;
};

// Collects float32 tensors, then writes the file atomically (PATH.tmp, renamed over PATH).
class SafetensorsWriter {
 public:
  void add(const std::string& name, std::vector<int64_t> shape, std::vector<float> values);
  void setMetadata(const std::string& key, const std::string& value);
  // Throws Error (exit 1) naming the file when it cannot be written.
  void write(const std::string& path) const;

 private:
  struct Pending {
    std::string name;
    std::vector<int64_t> shape;
    std::vector<float> values;
  };
  std::vector<Pending> tensors_;
  std::map<std::string, std::string> metadata_;
};

// A parsed and validated safetensors file; tensors are read on demand.
class SafetensorsReader {
 public:
  // Throws UsageError naming `path` (and the tensor) when the file is missing, too short, its
  // header length or JSON is bad, a dtype is unsupported, a shape does not match its byte range,
  // or the ranges overlap, leave holes or run past the end of the file.
  explicit SafetensorsReader(const std::string& path);

  const std::string& path() const { return path_; }
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }  // by begin offset
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // nullptr when absent.
  const SafetensorsEntry* find(const std::string& name) const;
  // The tensor's values converted to float32 (row-major). Throws UsageError naming the file
  // and tensor when the file turns out shorter than its header promised.
  std::vector<float> readFloat32(const SafetensorsEntry& entry) const;

 private:
  std::string path_;
  uint64_t data_start_ = 0;  // 8 + N
  std::vector<SafetensorsEntry> entries_;
  std::map<std::string, std::string> metadata_;
};

// "F32", "F16", "BF16".
const char* stDTypeName(StDType t);

}  // namespace kdgrid
