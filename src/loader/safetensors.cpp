#include "loader/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json_text.h"

namespace tandem::loader {

namespace {

using nlohmann::json;

// A JSON value for an error message, cut short so a corrupt header cannot produce a megabyte of text.
std::string brief(const json& v) {
  std::string s = v.dump();
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

// Reads a non-negative JSON integer; anything else (negative, fractional, string...) is an error naming
// the field, so a corrupt header never reaches arithmetic.
uint64_t get_uint(const json& v, const std::string& file, const std::string& tensor, const char* field) {
  if (!v.is_number_unsigned())
    fail("{}: tensor '{}': {} must hold non-negative integers, got {}", file, tensor, field, brief(v));
  return v.get<uint64_t>();
}

// A dimension this large cannot describe real data and would overflow numel.
constexpr uint64_t kMaxDim = uint64_t{1} << 48;

TensorInfo parse_entry(const std::string& file, const std::string& name, const json& entry,
                       const uint8_t* data_begin, uint64_t data_size) {
  if (!entry.is_object())
    fail("{}: tensor '{}': header entry is not an object: {}", file, name, brief(entry));
  const auto dtype_it = entry.find("dtype");
  const auto shape_it = entry.find("shape");
  const auto offsets_it = entry.find("data_offsets");
  if (dtype_it == entry.end()) fail("{}: tensor '{}': header entry lacks 'dtype'", file, name);
  if (shape_it == entry.end()) fail("{}: tensor '{}': header entry lacks 'shape'", file, name);
  if (offsets_it == entry.end()) fail("{}: tensor '{}': header entry lacks 'data_offsets'", file, name);
  if (!dtype_it->is_string())
    fail("{}: tensor '{}': 'dtype' must be a string, got {}", file, name, brief(*dtype_it));
  if (!shape_it->is_array())
    fail("{}: tensor '{}': 'shape' must be an array, got {}", file, name, brief(*shape_it));
  if (!offsets_it->is_array() || offsets_it->size() != 2)
    fail("{}: tensor '{}': 'data_offsets' must be an array [begin, end], got {}", file, name,
         brief(*offsets_it));

  TensorInfo t;
  t.name = name;
  const std::string& dtype_str = dtype_it->get_ref<const std::string&>();
  if (!parse_dtype(dtype_str, &t.dtype))
    fail("{}: tensor '{}' has unsupported dtype {} (tandem loads F32, BF16, F16, F8_E4M3, I32, I64)", file,
         name, dtype_str);
  if (shape_it->size() > static_cast<size_t>(Shape::kMaxDims))
    fail("{}: tensor '{}' has rank {} (shape {}); tandem supports rank <= {}", file, name, shape_it->size(),
         brief(*shape_it), Shape::kMaxDims);
  uint64_t numel = 1;
  bool overflow = false;
  for (const json& d : *shape_it) {
    const uint64_t v = get_uint(d, file, name, "'shape'");
    if (v > kMaxDim)
      fail("{}: tensor '{}': dimension {} in shape {} is absurd", file, name, v, brief(*shape_it));
    t.shape.d[t.shape.rank++] = static_cast<int64_t>(v);
    overflow = overflow || __builtin_mul_overflow(numel, v, &numel);
  }
  uint64_t nbytes = 0;
  overflow = overflow || __builtin_mul_overflow(numel, static_cast<uint64_t>(dtype_size(t.dtype)), &nbytes);
  if (overflow) fail("{}: tensor '{}': shape {} overflows the byte count", file, name, brief(*shape_it));

  const uint64_t begin = get_uint((*offsets_it)[0], file, name, "'data_offsets'");
  const uint64_t end = get_uint((*offsets_it)[1], file, name, "'data_offsets'");
  if (end < begin) fail("{}: tensor '{}': data_offsets [{}, {}] end before begin", file, name, begin, end);
  if (end > data_size)
    fail(
        "{}: tensor '{}': data_offsets [{}, {}] reach past the {} data bytes the file holds (truncated "
        "file?)",
        file, name, begin, end, data_size);
  if (end - begin != nbytes)
    fail("{}: tensor '{}': data_offsets [{}, {}] span {} bytes but {} {} needs {}", file, name, begin, end,
         end - begin, dtype_str, t.shape.str(), nbytes);
  t.data = data_begin + begin;
  t.nbytes = static_cast<size_t>(nbytes);
  return t;
}

}  // namespace

Tensor TensorInfo::view() const {
  return Tensor{const_cast<void*>(data), shape, dtype, Device::host()};
}

std::unique_ptr<SafetensorsFile> SafetensorsFile::open(const std::filesystem::path& path) {
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open {}: {}", path.string(), std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    fail("cannot stat {}: {}", path.string(), std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("{} is not a regular file", path.string());
  }
  f->size_ = static_cast<size_t>(st.st_size);
  if (f->size_ < 8) {
    ::close(fd);
    fail("{}: file is {} bytes, shorter than the 8-byte safetensors header length", path.string(), f->size_);
  }
  void* m = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_errno = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (m == MAP_FAILED)
    fail("cannot mmap {} ({} bytes): {}", path.string(), f->size_, std::strerror(map_errno));
  f->map_ = m;
  f->parse();
  return f;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_ != nullptr) ::munmap(map_, size_);
}

void SafetensorsFile::parse() {
  const std::string file = path_.string();
  const auto* base = static_cast<const uint8_t*>(map_);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | base[i];  // little-endian on any host
  if (header_len > kMaxHeaderBytes)
    fail("{}: header length {} bytes is absurd (limit {} bytes); not a safetensors file?", file, header_len,
         kMaxHeaderBytes);
  if (header_len > size_ - 8)
    fail("{}: header length {} bytes exceeds the {} bytes after the length field (truncated file?)", file,
         header_len, size_ - 8);

  const std::string_view text(reinterpret_cast<const char*>(base + 8), static_cast<size_t>(header_len));
  const json header = parse_json_text<json>(text, file + ": header");
  if (!header.is_object()) fail("{}: header is not a JSON object", file);

  const uint8_t* data_begin = base + 8 + header_len;
  const uint64_t data_size = size_ - 8 - header_len;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (value.is_null()) continue;
      if (!value.is_object())
        fail("{}: __metadata__ must be an object of strings, got {}", file, brief(value));
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) fail("{}: __metadata__['{}'] must be a string, got {}", file, mk, brief(mv));
        metadata_[mk] = mv.get<std::string>();
      }
      continue;
    }
    tensors_.push_back(parse_entry(file, key, value, data_begin, data_size));
  }

  // Two tensors sharing bytes would alias silently; safetensors' own validator rejects it too.
  std::vector<const TensorInfo*> by_offset;
  for (const auto& t : tensors_)
    if (t.nbytes > 0) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->data < b->data; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const TensorInfo& prev = *by_offset[i - 1];
    const TensorInfo& cur = *by_offset[i];
    const auto prev_end = static_cast<const uint8_t*>(prev.data) + prev.nbytes;
    if (static_cast<const uint8_t*>(cur.data) < prev_end)
      fail("{}: tensors '{}' (bytes [{}, {})) and '{}' (bytes [{}, {})) overlap", file, prev.name,
           static_cast<const uint8_t*>(prev.data) - data_begin, prev_end - data_begin, cur.name,
           static_cast<const uint8_t*>(cur.data) - data_begin,
           static_cast<const uint8_t*>(cur.data) - data_begin + cur.nbytes);
  }

  const std::string file_name = path_.filename().string();
  for (auto& t : tensors_) t.file = file_name;
  std::sort(tensors_.begin(), tensors_.end(),
            [](const TensorInfo& a, const TensorInfo& b) { return a.name < b.name; });
}

const TensorInfo* SafetensorsFile::find(std::string_view name) const {
  const auto it = std::lower_bound(tensors_.begin(), tensors_.end(), name,
                                   [](const TensorInfo& t, std::string_view n) { return t.name < n; });
  return it != tensors_.end() && it->name == name ? &*it : nullptr;
}

}  // namespace tandem::loader
