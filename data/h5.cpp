#include "data/h5.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <utility>

namespace kdgrid::h5 {

std::recursive_mutex& hdf5Mutex() {
  // The accepted exception to "no mutable globals": HDF5 (built without thread safety) keeps
  // library-wide state, so all threads must take turns. Function-local: initialised on first
  // use, thread-safely.
  static std::recursive_mutex mutex;
  return mutex;
}

namespace {

// Compressed data cannot inflate beyond about 1032:1 with deflate (the strongest filter HDF5
// ships); 2048 leaves headroom for other filters while still rejecting a 1 MB file that claims
// terabytes.
constexpr uint64_t kMaxInflation = 2048;

// Holds hdf5Mutex() and, the first time any thread gets here, turns off HDF5's printing of
// error stacks (failures become exceptions instead).
class LibraryLock {
 public:
  LibraryLock() : lock_(hdf5Mutex()) {
    static const bool quiet = [] {
      H5open();
      H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
      return true;
    }();
    (void)quiet;
  }

 private:
  std::lock_guard<std::recursive_mutex> lock_;
};

herr_t collectErrorText(unsigned, const H5E_error2_t* error, void* data) {
  auto* lines = static_cast<std::vector<std::string>*>(data);
  if (error->desc && *error->desc) lines->emplace_back(error->desc);
  return 0;
}

// HDF5's reason for the last failure on this thread: the API-level message and the innermost
// one (e.g. "unable to open file: truncated file: eof = 100, ..."). Clears the error stack.
std::string hdf5Reason() {
  std::vector<std::string> lines;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collectErrorText, &lines);
  H5Eclear2(H5E_DEFAULT);
  if (lines.empty()) return "";
  if (lines.size() == 1 || lines.front() == lines.back()) return lines.front();
  return lines.front() + ": " + lines.back();
}

std::string withReason(const std::string& what) {
  std::string reason = hdf5Reason();
  return reason.empty() ? what : fmt::format("{} (HDF5: {})", what, reason);
}

[[noreturn]] void raise(const FileContext& file, const std::string& object,
                        const std::string& what) {
  std::string message = fmt::format("HDF5 file '{}'{}: {}", file.path, object, what);
  if (file.access == Access::kRead) throw UsageError(message);
  throw Error(kExitFailure, message);
}

// Aborts a conversion that would overflow, lose a sign or truncate, instead of HDF5's default
// of clamping silently (-1 read as uint64 would become 0).
H5T_conv_ret_t abortOnLoss(H5T_conv_except_t except, hid_t, hid_t, void*, void*, void*) {
  switch (except) {
    case H5T_CONV_EXCEPT_RANGE_HI:
    case H5T_CONV_EXCEPT_RANGE_LOW:
    case H5T_CONV_EXCEPT_TRUNCATE:
      return H5T_CONV_ABORT;
    default:
      return H5T_CONV_UNHANDLED;
  }
}

// A copy of `base` (or a new dataset-transfer list) that aborts lossy conversions.
Handle strictTransfer(hid_t base) {
  Handle dxpl(base == H5P_DEFAULT ? H5Pcreate(H5P_DATASET_XFER) : H5Pcopy(base), H5Pclose);
  KDGRID_CHECK(dxpl.valid() && H5Pset_type_conv_cb(dxpl.get(), abortOnLoss, nullptr) >= 0,
               "HDF5: cannot create a transfer property list: {}", hdf5Reason());
  return dxpl;
}

// Object-creation property list that records no access/modification times, so equal content
// gives equal files.
Handle untimedCreation(hid_t plist_class) {
  Handle plist(H5Pcreate(plist_class), H5Pclose);
  KDGRID_CHECK(plist.valid() && H5Pset_obj_track_times(plist.get(), false) >= 0,
               "HDF5: cannot create a property list: {}", hdf5Reason());
  return plist;
}

TypeInfo typeInfoOf(hid_t type) {
  TypeInfo info;
  info.type_class = H5Tget_class(type);
  info.size = H5Tget_size(type);
  info.is_signed = info.type_class == H5T_INTEGER && H5Tget_sign(type) == H5T_SGN_2;
  return info;
}

uint64_t checkedProduct(const std::vector<uint64_t>& dims, size_t first, bool* overflow) {
  uint64_t n = 1;
  for (size_t i = first; i < dims.size(); ++i) {
    if (__builtin_mul_overflow(n, dims[i], &n)) *overflow = true;
  }
  return n;
}

const char* elemTypeName(ElemType type) {
  // clang-format off
  switch (type) {
    case ElemType::kU8: return "uint8";
    case ElemType::kI8: return "int8";
    case ElemType::kU16: return "uint16";
    case ElemType::kU32: return "uint32";
    case ElemType::kI32: return "int32";
    case ElemType::kU64: return "uint64";
    case ElemType::kI64: return "int64";
    case ElemType::kF16: return "float16";
    case ElemType::kF32: return "float32";
    case ElemType::kF64: return "float64";
  }
  // clang-format on
  return "?";
}

std::string shapeText(const std::vector<uint64_t>& dims) {
  return fmt::format("[{}]", fmt::join(dims, ", "));
}

}  // namespace

// --- Handle ---

Handle::Handle(Handle&& other) noexcept
    : id_(std::exchange(other.id_, H5I_INVALID_HID)), close_(other.close_) {}

Handle& Handle::operator=(Handle&& other) noexcept {
  if (this != &other) {
    reset();
    id_ = std::exchange(other.id_, H5I_INVALID_HID);
    close_ = other.close_;
  }
  return *this;
}

void Handle::reset() noexcept {
  if (id_ >= 0 && close_) {
    try {
      std::lock_guard<std::recursive_mutex> lock(hdf5Mutex());
      close_(id_);
      H5Eclear2(H5E_DEFAULT);
    } catch (...) {
      // Destructors never throw; a failed close leaks one identifier at worst.
    }
  }
  id_ = H5I_INVALID_HID;
}

hid_t Handle::release() noexcept {
  return std::exchange(id_, H5I_INVALID_HID);
}

Handle makeType(ElemType type) {
  LibraryLock lock;
  hid_t base = H5T_STD_U8LE;
  // clang-format off
  switch (type) {
    case ElemType::kU8: base = H5T_STD_U8LE; break;
    case ElemType::kI8: base = H5T_STD_I8LE; break;
    case ElemType::kU16: base = H5T_STD_U16LE; break;
    case ElemType::kU32: base = H5T_STD_U32LE; break;
    case ElemType::kI32: base = H5T_STD_I32LE; break;
    case ElemType::kU64: base = H5T_STD_U64LE; break;
    case ElemType::kI64: base = H5T_STD_I64LE; break;
    case ElemType::kF16:  // built from float32 below
    case ElemType::kF32: base = H5T_IEEE_F32LE; break;
    case ElemType::kF64: base = H5T_IEEE_F64LE; break;
  }
  // clang-format on
  Handle handle(H5Tcopy(base), H5Tclose);
  bool ok = handle.valid();
  if (ok && type == ElemType::kF16) {
    // IEEE binary16: sign bit 15, exponent bits 10..14 (bias 15), mantissa bits 0..9.
    ok = H5Tset_fields(handle.get(), 15, 10, 5, 0, 10) >= 0 && H5Tset_size(handle.get(), 2) >= 0 &&
         H5Tset_ebias(handle.get(), 15) >= 0;
  }
  KDGRID_CHECK(ok, "HDF5: cannot create the {} datatype: {}", elemTypeName(type), hdf5Reason());
  return handle;
}

std::string TypeInfo::describe() const {
  switch (type_class) {
    case H5T_INTEGER:
      return fmt::format("{}int{}", is_signed ? "" : "u", size * 8);
    case H5T_FLOAT:
      return fmt::format("float{}", size * 8);
    case H5T_STRING:
      return "string";
    default:
      return fmt::format("HDF5 type class {}", static_cast<int>(type_class));
  }
}

// --- Object ---

std::string Object::describe() const {
  if (std::string(kind_) == "file") return fmt::format("HDF5 file '{}'", file_->path);
  return fmt::format("HDF5 file '{}', {} '{}'", file_->path, kind_, name_);
}

void Object::fail(const std::string& what) const {
  raise(*file_, std::string(kind_) == "file" ? "" : fmt::format(", {} '{}'", kind_, name_), what);
}

std::string Object::childName(const std::string& child) const {
  if (!child.empty() && child.front() == '/') return child;
  return name_ == "/" ? "/" + child : name_ + "/" + child;
}

bool Object::hasAttribute(const std::string& attr) const {
  LibraryLock lock;
  htri_t exists = H5Aexists(id(), attr.c_str());
  if (exists < 0) fail(withReason(fmt::format("cannot look up attribute '{}'", attr)));
  return exists > 0;
}

namespace {
herr_t collectAttributeName(hid_t, const char* name, const H5A_info_t*, void* data) {
  static_cast<std::vector<std::string>*>(data)->emplace_back(name);
  return 0;
}
}  // namespace

std::vector<std::string> Object::attributeNames() const {
  LibraryLock lock;
  std::vector<std::string> names;
  hsize_t index = 0;
  if (H5Aiterate2(id(), H5_INDEX_NAME, H5_ITER_INC, &index, collectAttributeName, &names) < 0) {
    fail(withReason("cannot list attributes"));
  }
  return names;
}

Handle Object::openAttribute(const std::string& attr) const {
  LibraryLock lock;
  if (!hasAttribute(attr)) fail(fmt::format("missing attribute '{}'", attr));
  Handle handle(H5Aopen(id(), attr.c_str(), H5P_DEFAULT), H5Aclose);
  if (!handle.valid()) fail(withReason(fmt::format("cannot open attribute '{}'", attr)));
  return handle;
}

namespace {

// The number of values an attribute holds (a scalar holds one).
hssize_t attributePoints(hid_t attr) {
  Handle space(H5Aget_space(attr), H5Sclose);
  return space.valid() ? H5Sget_simple_extent_npoints(space.get()) : -1;
}

}  // namespace

std::string Object::readStringAttribute(const std::string& attr) const {
  LibraryLock lock;
  Handle handle = openAttribute(attr);
  Handle type(H5Aget_type(handle.get()), H5Tclose);
  if (!type.valid()) fail(withReason(fmt::format("cannot read the type of attribute '{}'", attr)));
  TypeInfo info = typeInfoOf(type.get());
  if (info.type_class != H5T_STRING) {
    fail(fmt::format("attribute '{}' is {}, expected a string", attr, info.describe()));
  }
  hssize_t points = attributePoints(handle.get());
  if (points != 1)
    fail(fmt::format("attribute '{}' holds {} values, expected one string", attr, points));

  if (H5Tis_variable_str(type.get()) > 0) {
    Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
    KDGRID_CHECK(mem.valid() && H5Tset_size(mem.get(), H5T_VARIABLE) >= 0 &&
                     H5Tset_cset(mem.get(), H5Tget_cset(type.get())) >= 0,
                 "HDF5: cannot build a string type: {}", hdf5Reason());
    char* value = nullptr;
    if (H5Aread(handle.get(), mem.get(), &value) < 0) {
      fail(withReason(fmt::format("cannot read string attribute '{}'", attr)));
    }
    std::string text = value ? value : "";
    Handle space(H5Aget_space(handle.get()), H5Sclose);
    H5Dvlen_reclaim(mem.get(), space.get(), H5P_DEFAULT, &value);
    return text;
  }
  // Fixed length: read with the stored type itself (no conversion), then drop the padding.
  if (file_->access == Access::kRead && info.size > std::max<uint64_t>(file_->size_at_open, 1)) {
    fail(
        fmt::format("attribute '{}' declares {} bytes, more than the file holds", attr, info.size));
  }
  std::string text(info.size, '\0');
  if (H5Aread(handle.get(), type.get(), text.data()) < 0) {
    fail(withReason(fmt::format("cannot read string attribute '{}'", attr)));
  }
  if (H5Tget_strpad(type.get()) == H5T_STR_SPACEPAD) {
    text.erase(text.find_last_not_of(' ') + 1);
  } else {
    text.resize(std::min(text.size(), text.find('\0')));
  }
  return text;
}

void Object::readIntegerAttribute(const std::string& attr, int64_t* as_signed,
                                  uint64_t* as_unsigned, bool* is_signed) const {
  LibraryLock lock;
  Handle handle = openAttribute(attr);
  Handle type(H5Aget_type(handle.get()), H5Tclose);
  if (!type.valid()) fail(withReason(fmt::format("cannot read the type of attribute '{}'", attr)));
  TypeInfo info = typeInfoOf(type.get());
  if (!info.isInteger())
    fail(fmt::format("attribute '{}' is {}, expected an integer", attr, info.describe()));
  hssize_t points = attributePoints(handle.get());
  if (points != 1)
    fail(fmt::format("attribute '{}' holds {} values, expected one integer", attr, points));
  // Any integer of <= 8 bytes converts losslessly to the 64-bit type of the same signedness.
  *is_signed = info.is_signed;
  herr_t rc = info.is_signed ? H5Aread(handle.get(), H5T_NATIVE_INT64, as_signed)
                             : H5Aread(handle.get(), H5T_NATIVE_UINT64, as_unsigned);
  if (rc < 0) fail(withReason(fmt::format("cannot read integer attribute '{}'", attr)));
}

double Object::readFloatAttribute(const std::string& attr) const {
  LibraryLock lock;
  Handle handle = openAttribute(attr);
  Handle type(H5Aget_type(handle.get()), H5Tclose);
  if (!type.valid()) fail(withReason(fmt::format("cannot read the type of attribute '{}'", attr)));
  TypeInfo info = typeInfoOf(type.get());
  if (!info.isFloat() && !info.isInteger()) {
    fail(fmt::format("attribute '{}' is {}, expected a number", attr, info.describe()));
  }
  hssize_t points = attributePoints(handle.get());
  if (points != 1)
    fail(fmt::format("attribute '{}' holds {} values, expected one number", attr, points));
  double value = 0;
  if (H5Aread(handle.get(), H5T_NATIVE_DOUBLE, &value) < 0) {
    fail(withReason(fmt::format("cannot read numeric attribute '{}'", attr)));
  }
  return value;
}

AttributeValue Object::readAttribute(const std::string& attr) const {
  LibraryLock lock;
  H5T_class_t type_class;
  {
    Handle handle = openAttribute(attr);
    Handle type(H5Aget_type(handle.get()), H5Tclose);
    if (!type.valid())
      fail(withReason(fmt::format("cannot read the type of attribute '{}'", attr)));
    type_class = H5Tget_class(type.get());
  }
  switch (type_class) {
    case H5T_STRING:
      return readStringAttribute(attr);
    case H5T_INTEGER:
      return readIntAttribute<int64_t>(attr);
    case H5T_FLOAT:
      return readFloatAttribute(attr);
    default:
      fail(fmt::format("attribute '{}' is neither a string nor a number", attr));
  }
}

std::string Object::readAttributeAsText(const std::string& attr) const {
  LibraryLock lock;
  Handle handle = openAttribute(attr);
  Handle type(H5Aget_type(handle.get()), H5Tclose);
  if (type.valid() && H5Tget_class(type.get()) == H5T_INTEGER) {
    // Unsigned values beyond int64 print as they are.
    int64_t s = 0;
    uint64_t u = 0;
    bool is_signed = false;
    readIntegerAttribute(attr, &s, &u, &is_signed);
    return is_signed ? fmt::format("{}", s) : fmt::format("{}", u);
  }
  return attributeText(readAttribute(attr));
}

void Object::writeAttribute(const std::string& attr, const AttributeValue& value) {
  if (const auto* i = std::get_if<int64_t>(&value)) return writeIntAttribute(attr, *i);
  if (const auto* d = std::get_if<double>(&value)) return writeFloatAttribute(attr, *d);
  writeStringAttribute(attr, std::get<std::string>(value));
}

namespace {

void writeScalarAttribute(const Object& object, const std::string& attr, hid_t type,
                          const void* value) {
  LibraryLock lock;
  if (object.hasAttribute(attr) && H5Adelete(object.id(), attr.c_str()) < 0) {
    object.fail(withReason(fmt::format("cannot replace attribute '{}'", attr)));
  }
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle handle(H5Acreate2(object.id(), attr.c_str(), type, space.get(), H5P_DEFAULT, H5P_DEFAULT),
                H5Aclose);
  if (!handle.valid() || H5Awrite(handle.get(), type, value) < 0) {
    object.fail(withReason(fmt::format("cannot write attribute '{}'", attr)));
  }
}

}  // namespace

void Object::writeStringAttribute(const std::string& attr, const std::string& value) {
  LibraryLock lock;
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  KDGRID_CHECK(type.valid() && H5Tset_size(type.get(), H5T_VARIABLE) >= 0 &&
                   H5Tset_cset(type.get(), H5T_CSET_UTF8) >= 0,
               "HDF5: cannot build a string type: {}", hdf5Reason());
  const char* text = value.c_str();
  writeScalarAttribute(*this, attr, type.get(), &text);
}

void Object::writeIntAttribute(const std::string& attr, int64_t value) {
  writeScalarAttribute(*this, attr, H5T_STD_I64LE, &value);
}

void Object::writeFloatAttribute(const std::string& attr, double value) {
  writeScalarAttribute(*this, attr, H5T_IEEE_F64LE, &value);
}

// --- Dataset ---

Dataset::Dataset(std::shared_ptr<const FileContext> file, std::string name, Handle handle)
    : Object(std::move(file), std::move(name), "dataset", std::move(handle)) {
  LibraryLock lock;
  Handle space(H5Dget_space(id()), H5Sclose);
  int rank = space.valid() ? H5Sget_simple_extent_ndims(space.get()) : -1;
  if (rank < 0) fail(withReason("cannot read its dataspace"));
  dims_.resize(static_cast<size_t>(rank));
  static_assert(sizeof(hsize_t) == sizeof(uint64_t));
  if (rank > 0 && H5Sget_simple_extent_dims(space.get(), reinterpret_cast<hsize_t*>(dims_.data()),
                                            nullptr) < 0) {
    fail(withReason("cannot read its shape"));
  }
  Handle type(H5Dget_type(id()), H5Tclose);
  if (!type.valid()) fail(withReason("cannot read its datatype"));
  type_ = typeInfoOf(type.get());
  bool overflow = false;
  num_elements_ = checkedProduct(dims_, 0, &overflow);
  if (overflow) fail(fmt::format("shape {} overflows 64 bits", shapeText(dims_)));
  if (file_->access == Access::kRead) checkPlausibleSize();
}

void Dataset::checkPlausibleSize() const {
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(num_elements_, type_.size, &bytes)) {
    fail(fmt::format("shape {} of {} overflows 64 bits", shapeText(dims_), type_.describe()));
  }
  Handle dcpl(H5Dget_create_plist(id()), H5Pclose);
  int filters = dcpl.valid() ? H5Pget_nfilters(dcpl.get()) : -1;
  if (filters < 0) fail(withReason("cannot read its creation properties"));
  const uint64_t file_bytes = file_->size_at_open;
  if (filters > 0) {
    if (bytes / kMaxInflation > file_bytes) {
      fail(fmt::format("shape {} of {} needs {} bytes, implausible for a {}-byte file",
                       shapeText(dims_), type_.describe(), bytes, file_bytes));
    }
    return;
  }
  if (bytes > file_bytes) {
    fail(fmt::format(
        "shape {} of {} needs {} bytes but the file holds only {} (truncated or corrupt)",
        shapeText(dims_), type_.describe(), bytes, file_bytes));
  }
  uint64_t stored = H5Dget_storage_size(id());
  if (stored < bytes) {
    fail(fmt::format(
        "holds {} bytes of data but its shape {} of {} needs {} (never written, or corrupt)",
        stored, shapeText(dims_), type_.describe(), bytes));
  }
}

void Dataset::expectRank(int expected) const {
  if (rank() != expected) {
    fail(fmt::format("has shape {}, expected {} dimension{}", shapeText(dims_), expected,
                     expected == 1 ? "" : "s"));
  }
}

void Dataset::expectInteger() const {
  if (!type_.isInteger()) fail(fmt::format("is {}, expected an integer type", type_.describe()));
}

uint64_t Dataset::rowElements() const {
  bool overflow = false;
  return dims_.empty() ? 0 : checkedProduct(dims_, 1, &overflow);
}

uint64_t Dataset::checkedRowElements(uint64_t begin, uint64_t count) const {
  if (dims_.empty()) fail("is a scalar, expected an array");
  if (begin > dims_[0] || count > dims_[0] - begin) {
    fail(
        fmt::format("rows [{}, {}) requested, but it has {} rows", begin, begin + count, dims_[0]));
  }
  return count * rowElements();
}

void Dataset::readRows(ElemType mem_type, uint64_t begin, uint64_t count, void* out,
                       hid_t transfer) const {
  LibraryLock lock;
  const uint64_t n = checkedRowElements(begin, count);
  if (n == 0) return;
  Handle file_space(H5Dget_space(id()), H5Sclose);
  std::vector<hsize_t> start(dims_.size(), 0), extent(dims_.begin(), dims_.end());
  start[0] = begin;
  extent[0] = count;
  hsize_t mem_extent = n;
  Handle mem_space(H5Screate_simple(1, &mem_extent, nullptr), H5Sclose);
  if (!file_space.valid() || !mem_space.valid() ||
      H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr, extent.data(),
                          nullptr) < 0) {
    fail(withReason("cannot select rows to read"));
  }
  Handle type = makeType(mem_type);
  Handle dxpl = strictTransfer(transfer);
  if (H5Dread(id(), type.get(), mem_space.get(), file_space.get(), dxpl.get(), out) < 0) {
    fail(
        withReason(fmt::format("cannot read rows [{}, {}) of {} as {} (a value out of range, or "
                               "corrupt data)",
                               begin, begin + count, type_.describe(), elemTypeName(mem_type))));
  }
}

std::string Dataset::readBytes() const {
  if (!type_.isInteger() || type_.size != 1) {
    fail(fmt::format("is {}, expected 1-byte integers", type_.describe()));
  }
  std::string bytes(checkedRowElements(0, dims_.empty() ? 0 : dims_[0]), '\0');
  // The same signedness as stored: no conversion, every bit kept.
  readRows(type_.is_signed ? ElemType::kI8 : ElemType::kU8, 0, dims_[0], bytes.data());
  return bytes;
}

void Dataset::writeRows(ElemType mem_type, uint64_t begin, uint64_t num_elements, const void* data,
                        hid_t transfer) {
  LibraryLock lock;
  const uint64_t row = rowElements();
  KDGRID_CHECK(row > 0 && num_elements % row == 0, "{}: writing {} elements, not whole rows of {}",
               describe(), num_elements, row);
  const uint64_t count = num_elements / row;
  checkedRowElements(begin, count);
  if (num_elements == 0) return;
  Handle file_space(H5Dget_space(id()), H5Sclose);
  std::vector<hsize_t> start(dims_.size(), 0), extent(dims_.begin(), dims_.end());
  start[0] = begin;
  extent[0] = count;
  hsize_t mem_extent = num_elements;
  Handle mem_space(H5Screate_simple(1, &mem_extent, nullptr), H5Sclose);
  if (!file_space.valid() || !mem_space.valid() ||
      H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr, extent.data(),
                          nullptr) < 0) {
    fail(withReason("cannot select rows to write"));
  }
  Handle type = makeType(mem_type);
  Handle dxpl = strictTransfer(transfer);
  if (H5Dwrite(id(), type.get(), mem_space.get(), file_space.get(), dxpl.get(), data) < 0) {
    fail(withReason(fmt::format("cannot write rows [{}, {}) from {} as {}", begin, begin + count,
                                elemTypeName(mem_type), type_.describe())));
  }
}

// --- Group ---

bool Group::contains(const std::string& child) const {
  LibraryLock lock;
  // H5Lexists needs every intermediate link to exist, so walk the path one link at a time.
  std::string prefix = (!child.empty() && child.front() == '/') ? "/" : "";
  size_t pos = prefix.size();
  while (pos < child.size()) {
    size_t end = child.find('/', pos);
    if (end == std::string::npos) end = child.size();
    if (end > pos) {
      prefix += child.substr(pos, end - pos);
      htri_t exists = H5Lexists(id(), prefix.c_str(), H5P_DEFAULT);
      if (exists < 0) fail(withReason(fmt::format("cannot look up '{}'", childName(prefix))));
      if (exists == 0) return false;
      prefix += '/';
    }
    pos = end + 1;
  }
  return true;
}

namespace {
herr_t collectDatasetName(hid_t group, const char* name, const H5L_info_t*, void* data) {
  H5O_info_t info;
  if (H5Oget_info_by_name2(group, name, &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0) return -1;
  if (info.type == H5O_TYPE_DATASET) static_cast<std::vector<std::string>*>(data)->emplace_back(name);
  return 0;
}
}  // namespace

std::vector<std::string> Group::datasetNames() const {
  LibraryLock lock;
  std::vector<std::string> names;
  hsize_t index = 0;
  if (H5Literate(id(), H5_INDEX_NAME, H5_ITER_INC, &index, collectDatasetName, &names) < 0)
    fail(withReason("cannot list the datasets"));
  return names;
}

Group Group::openGroup(const std::string& child) const {
  LibraryLock lock;
  const std::string full = childName(child);
  if (!contains(child)) raise(*file_, fmt::format(", group '{}'", full), "missing");
  Handle handle(H5Gopen2(id(), child.c_str(), H5P_DEFAULT), H5Gclose);
  if (!handle.valid())
    raise(*file_, fmt::format(", group '{}'", full), withReason("cannot open it as a group"));
  return Group(file_, full, "group", std::move(handle));
}

Dataset Group::openDataset(const std::string& child) const {
  LibraryLock lock;
  const std::string full = childName(child);
  if (!contains(child)) raise(*file_, fmt::format(", dataset '{}'", full), "missing");
  Handle handle(H5Dopen2(id(), child.c_str(), H5P_DEFAULT), H5Dclose);
  if (!handle.valid()) {
    raise(*file_, fmt::format(", dataset '{}'", full), withReason("cannot open it as a dataset"));
  }
  return Dataset(file_, full, std::move(handle));
}

Group Group::createGroup(const std::string& child) {
  LibraryLock lock;
  const std::string full = childName(child);
  Handle gcpl = untimedCreation(H5P_GROUP_CREATE);
  Handle handle(H5Gcreate2(id(), child.c_str(), H5P_DEFAULT, gcpl.get(), H5P_DEFAULT), H5Gclose);
  if (!handle.valid())
    raise(*file_, fmt::format(", group '{}'", full), withReason("cannot create it"));
  return Group(file_, full, "group", std::move(handle));
}

void Group::removeLink(const std::string& child) {
  LibraryLock lock;
  if (H5Ldelete(id(), child.c_str(), H5P_DEFAULT) < 0) {
    raise(*file_, fmt::format(", link '{}'", childName(child)), withReason("cannot remove it"));
  }
}

Dataset Group::createDataset(const std::string& child, const std::vector<uint64_t>& dims,
                             ElemType file_type, const DatasetOptions& options) {
  LibraryLock lock;
  const std::string full = childName(child);
  KDGRID_CHECK(!dims.empty(),
               "HDF5 file '{}', dataset '{}': a dataset needs at least one dimension", file_->path,
               full);
  Handle type = makeType(file_type);
  std::vector<hsize_t> extent(dims.begin(), dims.end());
  Handle space(H5Screate_simple(static_cast<int>(extent.size()), extent.data(), nullptr), H5Sclose);
  Handle dcpl = untimedCreation(H5P_DATASET_CREATE);
  bool ok = space.valid();
  const bool empty = std::find(dims.begin(), dims.end(), 0) != dims.end();
  if (ok && options.contiguous) {
    ok = H5Pset_layout(dcpl.get(), H5D_CONTIGUOUS) >= 0 &&
         H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER) >= 0;
  } else if (ok && !empty) {
    // Chunks of whole rows, about options.chunk_bytes each (at least one row).
    bool overflow = false;
    const uint64_t row_bytes = checkedProduct(dims, 1, &overflow) * H5Tget_size(type.get());
    std::vector<hsize_t> chunk = extent;
    chunk[0] =
        std::clamp<uint64_t>(options.chunk_bytes / std::max<uint64_t>(row_bytes, 1), 1, dims[0]);
    ok = !overflow && H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data()) >= 0;
    if (ok && options.deflate_level > 0)
      ok = H5Pset_deflate(dcpl.get(), options.deflate_level) >= 0;
  }
  if (!ok)
    raise(*file_, fmt::format(", dataset '{}'", full), withReason("cannot set up its layout"));
  Handle handle(H5Dcreate2(id(), child.c_str(), type.get(), space.get(), H5P_DEFAULT, dcpl.get(),
                           H5P_DEFAULT),
                H5Dclose);
  if (!handle.valid())
    raise(*file_, fmt::format(", dataset '{}'", full), withReason("cannot create it"));
  return Dataset(file_, full, std::move(handle));
}

// --- File ---

File File::openRead(const std::string& path, hid_t fapl) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (!fs::exists(status)) throw UsageError(fmt::format("HDF5 file '{}': no such file", path));
  if (fs::is_directory(status)) {
    throw UsageError(fmt::format("HDF5 file '{}': is a directory, expected an HDF5 file", path));
  }
  LibraryLock lock;
  htri_t is_hdf5 = H5Fis_hdf5(path.c_str());
  if (is_hdf5 == 0) {
    throw UsageError(fmt::format("HDF5 file '{}': not an HDF5 file (no HDF5 signature)", path));
  }
  if (is_hdf5 < 0)
    throw UsageError(fmt::format("HDF5 file '{}': {}", path, withReason("cannot read it")));
  Handle handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl), H5Fclose);
  if (!handle.valid()) {
    throw UsageError(fmt::format("HDF5 file '{}': {}", path,
                                 withReason("cannot open it (truncated or corrupt)")));
  }
  hsize_t size = 0;
  if (H5Fget_filesize(handle.get(), &size) < 0) {
    throw UsageError(fmt::format("HDF5 file '{}': {}", path, withReason("cannot get its size")));
  }
  auto context = std::make_shared<const FileContext>(FileContext{path, Access::kRead, size});
  return File(std::move(context), std::move(handle));
}

File File::create(const std::string& path, hid_t fapl) {
  LibraryLock lock;
  auto context = std::make_shared<const FileContext>(FileContext{path, Access::kWrite, 0});
  Handle fcpl = untimedCreation(H5P_FILE_CREATE);
  Handle handle(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl.get(), fapl), H5Fclose);
  if (!handle.valid()) raise(*context, "", withReason("cannot create it"));
  return File(std::move(context), std::move(handle));
}

File File::openReadWrite(const std::string& path, hid_t fapl) {
  LibraryLock lock;
  auto context = std::make_shared<const FileContext>(FileContext{path, Access::kWrite, 0});
  Handle handle(H5Fopen(path.c_str(), H5F_ACC_RDWR, fapl), H5Fclose);
  if (!handle.valid()) raise(*context, "", withReason("cannot open it for writing"));
  return File(std::move(context), std::move(handle));
}

uint64_t File::fileSize() const {
  LibraryLock lock;
  hsize_t size = 0;
  if (H5Fget_filesize(id(), &size) < 0) fail(withReason("cannot get its size"));
  return size;
}

void File::close() {
  if (!handle_.valid()) return;
  LibraryLock lock;
  const ssize_t open_objects = H5Fget_obj_count(
      id(), H5F_OBJ_DATASET | H5F_OBJ_GROUP | H5F_OBJ_DATATYPE | H5F_OBJ_ATTR | H5F_OBJ_LOCAL);
  KDGRID_CHECK(open_objects == 0, "{}: close() with {} objects still open", describe(),
               open_objects);
  if (file_->access == Access::kWrite && H5Fflush(id(), H5F_SCOPE_LOCAL) < 0) {
    fail(withReason("cannot flush it"));
  }
  if (H5Fclose(handle_.release()) < 0) fail(withReason("cannot close it"));
}

std::string lastErrorReason() { return hdf5Reason(); }

}  // namespace kdgrid::h5
