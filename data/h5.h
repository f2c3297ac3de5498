// A small RAII layer over the HDF5 C API (parallel build, C API only), shared by shards and
// checkpoints.
//
// Ownership: every HDF5 identifier lives in a Handle that closes it in its destructor (never
// throwing). Objects (File, Group, Dataset) remember their file's path and name so every
// failure names them.
//
// Errors: HDF5's automatic error printing is off; a failed call becomes an exception whose
// message names the file and object and quotes HDF5's own reason. A file opened for reading is
// user input, so its failures are UsageError (exit 2); a file being written fails with Error
// (exit 1).
//
// Threads: the HDF5 library here is not built thread-safe, while the data loader reads shards
// on a background thread and the main thread writes checkpoints. Every HDF5 call made through
// this layer holds hdf5Mutex(); code that calls the C API directly must hold it too.
//
// Reading is safe against hostile headers: opening a dataset of a file opened for reading
// checks that its declared size fits in the file (or, when compressed, within a bounded
// inflation of it) before anyone allocates a buffer for it; integer conversions that would
// overflow or lose a sign abort the read instead of clamping.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "src/core/attributes.h"
#include "src/core/check.h"
#include "src/core/dtype.h"

namespace kdgrid::h5 {

// The one process-wide lock around the (non-thread-safe) HDF5 library: the accepted exception
// to "no mutable globals". Recursive, so helpers may nest.
std::recursive_mutex& hdf5Mutex();

// HDF5's reason for the last failed call on this thread, for error messages (clears HDF5's
// error stack). Call with hdf5Mutex() held.
std::string lastErrorReason();

// One owned HDF5 identifier, closed with its matching H5?close under hdf5Mutex().
class Handle {
 public:
  using CloseFn = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, CloseFn close) : id_(id), close_(close) {}
  ~Handle() { reset(); }
  Handle(Handle&& other) noexcept;
  Handle& operator=(Handle&& other) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void reset() noexcept;     // closes now; errors are ignored (see File::close)
  hid_t release() noexcept;  // gives up ownership

 private:
  hid_t id_ = H5I_INVALID_HID;
  CloseFn close_ = nullptr;
};

// Element types kdgrid stores. kF16 is IEEE binary16 (HDF5 1.10 has no predefined one; the
// layout matches numpy/h5py float16).
enum class ElemType { kU8, kI8, kU16, kU32, kI32, kU64, kI64, kF16, kF32, kF64 };

// The element type of a C++ type; a type without one does not compile.
template <typename T>
constexpr ElemType elemTypeOf() {
  static_assert(sizeof(T) == 0, "no HDF5 element type for this C++ type");
  return ElemType::kU8;
}
// clang-format off
template <> constexpr ElemType elemTypeOf<uint8_t>() { return ElemType::kU8; }
template <> constexpr ElemType elemTypeOf<int8_t>() { return ElemType::kI8; }
template <> constexpr ElemType elemTypeOf<uint16_t>() { return ElemType::kU16; }
template <> constexpr ElemType elemTypeOf<uint32_t>() { return ElemType::kU32; }
template <> constexpr ElemType elemTypeOf<int32_t>() { return ElemType::kI32; }
template <> constexpr ElemType elemTypeOf<uint64_t>() { return ElemType::kU64; }
template <> constexpr ElemType elemTypeOf<int64_t>() { return ElemType::kI64; }
template <> constexpr ElemType elemTypeOf<f16>() { return ElemType::kF16; }
template <> constexpr ElemType elemTypeOf<float>() { return ElemType::kF32; }
template <> constexpr ElemType elemTypeOf<double>() { return ElemType::kF64; }
// clang-format on

// A new HDF5 datatype for `type` (little-endian standard types; native layout on x86).
Handle makeType(ElemType type);

enum class Access { kRead, kWrite };

// What the objects of one open file share.
struct FileContext {
  std::string path;
  Access access = Access::kRead;
  uint64_t size_at_open = 0;  // bytes; bounds what a dataset of a file being read may declare
};

// The class, size and signedness of a stored datatype.
struct TypeInfo {
  H5T_class_t type_class = H5T_NO_CLASS;
  size_t size = 0;  // bytes per element
  bool is_signed = false;
  bool isInteger() const { return type_class == H5T_INTEGER; }
  bool isFloat() const { return type_class == H5T_FLOAT; }
  std::string describe() const;  // "uint16", "int64", "float32", "string", ...
};

// Something that holds attributes: the file's root group, a group or a dataset.
class Object {
 public:
  hid_t id() const { return handle_.get(); }
  const std::string& path() const { return file_->path; }  // the file
  const std::string& name() const { return name_; }        // in the file, e.g. "/text/offsets"
  // "HDF5 file 'a.h5', dataset '/text/offsets'"
  std::string describe() const;
  // Throws UsageError (file opened for reading) or Error (file being written) saying
  // "<describe()>: <what>".
  [[noreturn]] void fail(const std::string& what) const;

  bool hasAttribute(const std::string& attr) const;
  std::vector<std::string> attributeNames() const;  // in name order
  // A string attribute, fixed- or variable-length, scalar or a 1-element array.
  std::string readStringAttribute(const std::string& attr) const;
  // An integer attribute of any integer type, checked to fit T.
  template <typename T>
  T readIntAttribute(const std::string& attr) const;
  double readFloatAttribute(const std::string& attr) const;  // float or integer attribute
  // A string, integer or float attribute as text (integers in decimal, floats shortest
  // round-trip form).
  std::string readAttributeAsText(const std::string& attr) const;
  // A string, integer (as int64) or float attribute.
  AttributeValue readAttribute(const std::string& attr) const;

  // Scalar attributes, replacing any of the same name: strings as variable-length UTF-8,
  // integers as int64, floats as float64 (what h5py writes for Python values).
  void writeStringAttribute(const std::string& attr, const std::string& value);
  void writeIntAttribute(const std::string& attr, int64_t value);
  void writeFloatAttribute(const std::string& attr, double value);
  void writeAttribute(const std::string& attr, const AttributeValue& value);

 protected:
  Object(std::shared_ptr<const FileContext> file, std::string name, const char* kind, Handle handle)
      : file_(std::move(file)), name_(std::move(name)), kind_(kind), handle_(std::move(handle)) {}
  std::string childName(const std::string& child) const;  // absolute name of a child link
  Handle openAttribute(const std::string& attr) const;    // fails naming the attribute if absent
  void readIntegerAttribute(const std::string& attr, int64_t* as_signed, uint64_t* as_unsigned,
                            bool* is_signed) const;

  std::shared_ptr<const FileContext> file_;
  std::string name_;
  const char* kind_;  // "group", "dataset", "file"
  Handle handle_;
};

// Chunking and compression of a new dataset. Datasets with a zero-length dimension are stored
// contiguous (HDF5 cannot chunk them).
struct DatasetOptions {
  uint64_t chunk_bytes = uint64_t{1} << 20;  // target bytes per chunk (whole rows of 2-D data)
  int deflate_level = 0;                     // 0 = uncompressed, 1..9 = gzip level
  // One contiguous block in the file, no chunking or filters, and no fill values written (the
  // caller writes every element): checkpoints, written in parallel as hyperslabs.
  bool contiguous = false;
};

class Dataset : public Object {
 public:
  const std::vector<uint64_t>& dims() const { return dims_; }
  int rank() const { return static_cast<int>(dims_.size()); }
  uint64_t numElements() const { return num_elements_; }
  const TypeInfo& type() const { return type_; }
  // Fails naming the dataset unless it has `rank` dimensions.
  void expectRank(int rank) const;
  // Fails naming the dataset unless its type is an integer type.
  void expectInteger() const;

  // The whole dataset (row-major), converted to T by HDF5.
  template <typename T>
  std::vector<T> read() const {
    std::vector<T> out(checkedRowElements(0, rank() == 0 ? 0 : dims_[0]));
    readRows(elemTypeOf<T>(), 0, dims_[0], out.data());
    return out;
  }
  // Rows [begin, begin + count) along dimension 0 (elements of 1-D data), converted to T.
  template <typename T>
  std::vector<T> readRows(uint64_t begin, uint64_t count) const {
    std::vector<T> out(checkedRowElements(begin, count));
    readRows(elemTypeOf<T>(), begin, count, out.data());
    return out;
  }
  // A 1-byte integer dataset as raw bytes, no conversion.
  std::string readBytes() const;

  // Writes `data` (row-major) into rows [begin, begin + data.size() / row_elements).
  // `transfer` is a dataset-transfer property list to start from (e.g. collective MPI-IO for
  // checkpoints); the caller keeps ownership.
  template <typename T>
  void writeRows(uint64_t begin, std::span<const T> data, hid_t transfer = H5P_DEFAULT) {
    writeRows(elemTypeOf<T>(), begin, data.size(), data.data(), transfer);
  }

  // Low-level forms of the templates above: `out` / `data` holds elements of `mem_type`.
  void readRows(ElemType mem_type, uint64_t begin, uint64_t count, void* out,
                hid_t transfer = H5P_DEFAULT) const;
  void writeRows(ElemType mem_type, uint64_t begin, uint64_t num_elements, const void* data,
                 hid_t transfer = H5P_DEFAULT);
  uint64_t rowElements() const;  // elements per row along dimension 0 (1 for 1-D)
  // count * rowElements(), after checking rank >= 1 and begin + count <= dims()[0].
  uint64_t checkedRowElements(uint64_t begin, uint64_t count) const;

 private:
  friend class Group;
  Dataset(std::shared_ptr<const FileContext> file, std::string name, Handle handle);
  void checkPlausibleSize() const;

  std::vector<uint64_t> dims_;
  uint64_t num_elements_ = 0;
  TypeInfo type_;
};

class Group : public Object {
 public:
  // Whether a link `child` exists (a relative path such as "text/offsets" is allowed).
  bool contains(const std::string& child) const;
  Group openGroup(const std::string& child) const;      // fails naming the group when missing
  Dataset openDataset(const std::string& child) const;  // fails naming the dataset when missing
  Group createGroup(const std::string& child);
  void removeLink(const std::string& child);
  // The names of the datasets directly in this group, in name order.
  std::vector<std::string> datasetNames() const;  // unlinks a dataset or group (space is not reclaimed)

  // A new dataset of `dims` (rank >= 1; rows along dimension 0) stored as `file_type`, chunked per
  // `options`.
  Dataset createDataset(const std::string& child, const std::vector<uint64_t>& dims,
                        ElemType file_type, const DatasetOptions& options = {});
  // createDataset + writeRows of all of `data` (data.size() == product of dims).
  template <typename T>
  Dataset writeDataset(const std::string& child, std::span<const T> data,
                       const std::vector<uint64_t>& dims, ElemType file_type,
                       const DatasetOptions& options = {}) {
    Dataset ds = createDataset(child, dims, file_type, options);
    ds.writeRows(0, data);
    return ds;
  }
  template <typename T>
  Dataset writeDataset(const std::string& child, const std::vector<T>& data, ElemType file_type,
                       const DatasetOptions& options = {}) {
    return writeDataset(child, std::span<const T>(data), {data.size()}, file_type, options);
  }

 protected:
  Group(std::shared_ptr<const FileContext> file, std::string name, const char* kind, Handle handle)
      : Object(std::move(file), std::move(name), kind, std::move(handle)) {}
};

class File : public Group {
 public:
  // Opens an existing file read-only. A missing file, a file that is not HDF5 or a truncated
  // one throws UsageError naming it. `fapl` is a file-access property list (e.g. MPI-IO for
  // collective checkpoint reads); the caller keeps ownership.
  static File openRead(const std::string& path, hid_t fapl = H5P_DEFAULT);
  // Opens an existing file for reading and writing (failures are Error, exit 1).
  static File openReadWrite(const std::string& path, hid_t fapl = H5P_DEFAULT);
  // Creates (truncates) `path` for writing. Objects created in it record no timestamps, so
  // the same content gives the same bytes.
  static File create(const std::string& path, hid_t fapl = H5P_DEFAULT);

  uint64_t fileSize() const;  // bytes (H5Fget_filesize)
  // Flushes and closes, throwing on failure (the destructor closes quietly). Every object
  // opened from this file must be closed first.
  void close();

 private:
  File(std::shared_ptr<const FileContext> file, Handle handle)
      : Group(std::move(file), "/", "file", std::move(handle)) {}
};

// --- template definitions ---

template <typename T>
T Object::readIntAttribute(const std::string& attr) const {
  static_assert(std::is_integral_v<T>);
  int64_t s = 0;
  uint64_t u = 0;
  bool is_signed = false;
  readIntegerAttribute(attr, &s, &u, &is_signed);
  if (is_signed) {
    if (s < 0 ? (!std::is_signed_v<T> || s < static_cast<int64_t>(std::numeric_limits<T>::min()))
              : static_cast<uint64_t>(s) > static_cast<uint64_t>(std::numeric_limits<T>::max())) {
      fail(fmt::format("attribute '{}' = {} is out of range", attr, s));
    }
    return static_cast<T>(s);
  }
  if (u > static_cast<uint64_t>(std::numeric_limits<T>::max())) {
    fail(fmt::format("attribute '{}' = {} is out of range", attr, u));
  }
  return static_cast<T>(u);
}

}  // namespace kdgrid::h5
