#include "io/safetensors.h"

#include "core/error.h"
#include "core/json_depth.h"
#include "core/strings.h"
#include "io/atomic_file.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

namespace fs = std::filesystem;
using nlohmann::json;

namespace peft::safetensors {

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this reader maps it directly and needs a little-endian host"
#endif

namespace {

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the reference implementation's limit

struct DtypeEntry {
  const char* name;
  torch::Dtype dtype;
};

constexpr DtypeEntry kDtypes[] = {
    {"F64", torch::kDouble}, {"F32", torch::kFloat}, {"F16", torch::kHalf},  {"BF16", torch::kBFloat16},
    {"I64", torch::kLong},   {"I32", torch::kInt},   {"I16", torch::kShort}, {"I8", torch::kChar},
    {"U8", torch::kByte},    {"BOOL", torch::kBool},
};

const DtypeEntry* find_dtype(const std::string& name) {
  for (const auto& entry : kDtypes)
    if (name == entry.name) return &entry;
  return nullptr;
}

// "[2, 3]"; a shape of many dimensions is cut short ("[1, 1, ..., 1] (1000 dimensions)") to keep messages short.
std::string shape_text(const std::vector<int64_t>& shape) {
  constexpr size_t kShown = 8;
  std::string text = "[";
  for (size_t i = 0; i < shape.size() && i < kShown; ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() <= kShown) return text + "]";
  return text + ", ..., " + std::to_string(shape.back()) + "] (" + std::to_string(shape.size()) + " dimensions)";
}

// nlohmann keeps only one of duplicate keys without telling; this parse records the first duplicate instead.
// Returns "" and fills `out`, or returns the problem.
std::string parse_json_strict(const char* begin, const char* end, json& out) {
  if (!json_depth_ok(std::string_view(begin, end - begin)))
    return "nested deeper than " + std::to_string(kMaxJsonDepth) + " levels";
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  auto callback = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == json::parse_event_t::key && !open_objects.empty()) {
      const auto& key = parsed.get_ref<const std::string&>();
      if (!open_objects.back().insert(key).second && duplicate.empty()) duplicate = key;
    }
    return true;
  };
  try {
    out = json::parse(begin, end, callback);
  } catch (const json::exception& e) {
    return "not valid JSON: " + printable(e.what(), kMaxQuoted);
  }
  if (!duplicate.empty()) return "duplicate key '" + printable(duplicate) + "'";
  return "";
}

// Header validation for one file; every message starts with the path.
class HeaderParser {
 public:
  HeaderParser(const std::string& path, uint64_t buffer_size) : path_(path), buffer_size_(buffer_size) {}

  [[noreturn]] void fail(const std::string& problem) const {
    throw Error("invalid safetensors file " + path_ + ": " + problem);
  }

  TensorInfo parse_entry(const std::string& name, const json& entry) const {
    const std::string where = "tensor '" + printable(name) + "': ";
    if (!entry.is_object()) fail(where + "entry is not a JSON object");
    for (const char* field : {"dtype", "shape", "data_offsets"})
      if (!entry.contains(field)) fail(where + "missing '" + field + "'");

    TensorInfo info;
    const json& dtype = entry["dtype"];
    if (!dtype.is_string()) fail(where + "'dtype' must be a string");
    info.dtype_name = dtype.get<std::string>();
    const DtypeEntry* known = find_dtype(info.dtype_name);
    if (!known) fail(where + "unsupported dtype '" + printable(info.dtype_name) + "'");
    info.dtype = known->dtype;

    const json& shape = entry["shape"];
    if (!shape.is_array()) fail(where + "'shape' must be an array of integers");
    uint64_t bytes = c10::elementSize(info.dtype);
    // A zero dimension empties the tensor, but LibTorch still multiplies the other dimensions into strides.
    int64_t strided = 1;
    for (const json& dim : shape) {
      if (!dim.is_number_integer()) fail(where + "'shape' must be an array of integers");
      if (dim.is_number_unsigned()) {
        uint64_t value = dim.get<uint64_t>();
        if (value > uint64_t(INT64_MAX)) fail(where + "dimension " + std::to_string(value) + " is too large");
        info.shape.push_back(static_cast<int64_t>(value));
        if (__builtin_mul_overflow(bytes, value, &bytes) ||
            __builtin_mul_overflow(strided, std::max<int64_t>(value, 1), &strided))
          fail(where + "shape " + shape_text(info.shape) + (info.shape.size() < shape.size() ? " and more" : "") +
               " is too large");
      } else {
        fail(where + "negative dimension " + std::to_string(dim.get<int64_t>()) + " in 'shape'");
      }
    }

    const json& offsets = entry["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
        !offsets[1].is_number_unsigned())
      fail(where + "'data_offsets' must be two non-negative integers [begin, end]");
    info.begin = offsets[0].get<uint64_t>();
    info.end = offsets[1].get<uint64_t>();
    const std::string range = "[" + std::to_string(info.begin) + ", " + std::to_string(info.end) + "]";
    if (info.begin > info.end)
      fail(where + "data_offsets " + range + " have begin " + std::to_string(info.begin) + " > end " +
           std::to_string(info.end));
    if (info.end > buffer_size_)
      fail(where + "data_offsets " + range + " lie outside the data buffer of " + std::to_string(buffer_size_) +
           " bytes");
    if (info.end - info.begin != bytes)
      fail(where + "data_offsets " + range + " span " + std::to_string(info.end - info.begin) + " bytes but shape " +
           shape_text(info.shape) + " of " + info.dtype_name + " needs " + std::to_string(bytes) + " bytes");
    return info;
  }

  // The ranges must tile the data buffer exactly: no overlap, no gap, nothing after the last tensor.
  void check_layout(const std::map<std::string, TensorInfo>& tensors) const {
    std::vector<std::pair<const std::string*, const TensorInfo*>> order;
    for (const auto& [name, info] : tensors) order.emplace_back(&name, &info);
    std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
      return std::make_pair(a.second->begin, a.second->end) < std::make_pair(b.second->begin, b.second->end);
    });
    uint64_t expected = 0;
    const std::string* previous = nullptr;
    for (const auto& [name, info] : order) {
      if (info->begin < expected)
        fail("tensor '" + printable(*name) + "' (bytes " + std::to_string(info->begin) + ".." +
             std::to_string(info->end) + ") overlaps tensor '" + printable(*previous) + "' (ending at byte " +
             std::to_string(expected) + ")");
      if (info->begin > expected)
        fail("gap of unused bytes " + std::to_string(expected) + ".." + std::to_string(info->begin) +
             " before tensor '" + printable(*name) + "'");
      expected = info->end;
      previous = name;
    }
    if (expected != buffer_size_)
      fail("invalid data buffer length: tensors end at byte " + std::to_string(expected) + " but the data buffer has " +
           std::to_string(buffer_size_) + " bytes");
  }

 private:
  const std::string& path_;
  uint64_t buffer_size_;
};

}  // namespace

torch::Dtype dtype_from_name(const std::string& name) {
  const DtypeEntry* entry = find_dtype(name);
  if (!entry) throw Error("unsupported safetensors dtype '" + printable(name) + "'");
  return entry->dtype;
}

std::string dtype_name(torch::Dtype dtype) {
  for (const auto& entry : kDtypes)
    if (entry.dtype == dtype) return entry.name;
  throw Error(std::string("cannot store dtype ") + c10::toString(dtype) + " in safetensors");
}

// ---- File ----

std::shared_ptr<File> File::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot open safetensors file " + path + ": " + std::strerror(errno));
  struct stat status {};
  if (::fstat(fd, &status) != 0 || !S_ISREG(status.st_mode)) {
    ::close(fd);
    throw Error("cannot open safetensors file " + path + ": not a regular file");
  }
  const uint64_t file_size = static_cast<uint64_t>(status.st_size);
  if (file_size < 8) {
    ::close(fd);
    throw Error("invalid safetensors file " + path + ": file is " + std::to_string(file_size) +
                " bytes, shorter than 8 bytes (the header length)");
  }
  // Private and writable: tensors are copy-on-write views, so an in-place op neither faults nor reaches the file.
  void* mapping = ::mmap(nullptr, file_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  int map_error = errno;
  ::close(fd);
  if (mapping == MAP_FAILED) throw Error("cannot map safetensors file " + path + ": " + std::strerror(map_error));

  std::shared_ptr<File> file(new File());  // from here on its destructor unmaps, also when validation throws
  file->path_ = path;
  file->mapping_ = mapping;
  file->mapping_size_ = file_size;
  file->self_ = file;

  const char* bytes = static_cast<const char*>(mapping);
  uint64_t header_size = 0;
  std::memcpy(&header_size, bytes, 8);  // little-endian host, checked above
  if (header_size > kMaxHeaderBytes)
    throw Error("invalid safetensors file " + path + ": header length " + std::to_string(header_size) +
                " exceeds the 100 MB limit");
  if (header_size > file_size - 8)
    throw Error("invalid safetensors file " + path + ": header length " + std::to_string(header_size) +
                " is larger than the file (" + std::to_string(file_size) + " bytes)");
  file->data_start_ = 8 + header_size;
  HeaderParser parser(path, file_size - file->data_start_);

  json header;
  std::string problem = parse_json_strict(bytes + 8, bytes + 8 + header_size, header);
  if (!problem.empty()) parser.fail("header " + problem);
  if (!header.is_object()) parser.fail("header is not a JSON object");

  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) parser.fail("__metadata__ is not a JSON object");
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string()) parser.fail("__metadata__ value for '" + printable(key) + "' is not a string");
        file->metadata_[key] = value.get<std::string>();
      }
      continue;
    }
    file->tensors_[name] = parser.parse_entry(name, entry);
  }
  parser.check_layout(file->tensors_);
  return file;
}

File::~File() {
  if (mapping_) ::munmap(mapping_, mapping_size_);
}

std::vector<std::string> File::names() const {
  std::vector<std::string> result;
  for (const auto& entry : tensors_) result.push_back(entry.first);
  return result;
}

torch::Tensor File::tensor(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) throw Error("tensor '" + printable(name) + "' not found in " + path_);
  const TensorInfo& info = it->second;
  auto options = torch::TensorOptions().dtype(info.dtype);
  if (info.begin == info.end) return torch::empty(info.shape, options);

  char* data = static_cast<char*>(mapping_) + data_start_ + info.begin;
  // An unpadded header can leave data misaligned for its type; such tensors get their own aligned copy.
  if (reinterpret_cast<uintptr_t>(data) % c10::elementSize(info.dtype) != 0)
    return torch::from_blob(data, info.shape, options).clone();
  std::shared_ptr<const File> keep_alive = self_.lock();
  return torch::from_blob(
      data, info.shape, [keep_alive](void*) {}, options);
}

// ---- Checkpoint ----

Checkpoint Checkpoint::open_file(const std::string& path) {
  Checkpoint checkpoint;
  checkpoint.description_ = path;
  checkpoint.files_.push_back(File::open(path));
  for (const auto& name : checkpoint.files_[0]->names()) checkpoint.location_[name] = 0;
  return checkpoint;
}

Checkpoint Checkpoint::open_directory(const std::string& directory) {
  if (!fs::is_directory(directory))
    throw Error("model directory " + directory + " does not exist or is not a directory");
  const fs::path dir(directory);
  if (fs::exists(dir / "model.safetensors")) return open_file((dir / "model.safetensors").string());

  const std::string index_path = (dir / "model.safetensors.index.json").string();
  if (!fs::exists(index_path)) {
    // Pickle can run arbitrary code when loaded: such weights are never read, only pointed at a conversion.
    for (const char* pickled : {"pytorch_model.bin", "pytorch_model.bin.index.json"}) {
      check(!fs::exists(dir / pickled),
            directory + " holds " + pickled +
                " (pickled PyTorch weights, which can execute code when loaded) and no "
                "model.safetensors; convert it in Python: AutoModel.from_pretrained(dir).save_pretrained(dir, "
                "safe_serialization=True)");
    }
    throw Error("no model.safetensors or model.safetensors.index.json in " + directory);
  }
  std::ifstream in(index_path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) throw Error("cannot read " + index_path);
  const std::string contents = text.str();
  json index;
  std::string problem = parse_json_strict(contents.data(), contents.data() + contents.size(), index);
  if (!problem.empty()) throw Error("invalid index " + index_path + ": " + problem);
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
    throw Error("invalid index " + index_path + ": missing 'weight_map' object");
  const json& weight_map = index["weight_map"];
  if (weight_map.empty()) throw Error("invalid index " + index_path + ": 'weight_map' is empty");

  Checkpoint checkpoint;
  checkpoint.description_ = directory;
  std::map<std::string, size_t> shard_index;  // shard file name -> index into files_
  for (const auto& [tensor, shard] : weight_map.items()) {
    if (!shard.is_string())
      throw Error("invalid index " + index_path + ": shard for tensor '" + printable(tensor) + "' is not a string");
    const std::string shard_name = shard.get<std::string>();
    if (shard_index.count(shard_name)) continue;
    const fs::path shard_path = dir / shard_name;
    if (!fs::is_regular_file(shard_path))
      throw Error("invalid index " + index_path + ": shard '" + printable(shard_name) + "' (listed for tensor '" +
                  printable(tensor) + "') does not exist at " + shard_path.string());
    shard_index[shard_name] = checkpoint.files_.size();
    checkpoint.files_.push_back(File::open(shard_path.string()));
    // Every tensor of every shard is loaded (as transformers does), so none may appear twice.
    for (const auto& name : checkpoint.files_.back()->names()) {
      auto [it, inserted] = checkpoint.location_.emplace(name, checkpoint.files_.size() - 1);
      if (!inserted)
        throw Error("tensor '" + printable(name) + "' is present in two shards of " + directory + ": " +
                    checkpoint.files_[it->second]->path() + " and " + shard_path.string());
    }
  }
  for (const auto& [tensor, shard] : weight_map.items()) {
    const auto& file = checkpoint.files_[shard_index.at(shard.get<std::string>())];
    if (!file->contains(tensor))
      throw Error("invalid index " + index_path + ": tensor '" + printable(tensor) + "' is listed in shard " +
                  file->path() + " but that file does not contain it");
  }
  return checkpoint;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> result;
  for (const auto& entry : location_) result.push_back(entry.first);
  return result;
}

const TensorInfo& Checkpoint::info(const std::string& name) const {
  auto it = location_.find(name);
  if (it == location_.end()) throw Error("tensor '" + name + "' not found in checkpoint " + description_);
  return files_[it->second]->tensors().at(name);
}

torch::Tensor Checkpoint::tensor(const std::string& name) const {
  auto it = location_.find(name);
  if (it == location_.end()) throw Error("tensor '" + name + "' not found in checkpoint " + description_);
  return files_[it->second]->tensor(name);
}

std::string Checkpoint::describe() const { return description_; }

// ---- save ----

void save(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
          const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  std::vector<uint64_t> sizes;
  for (const auto& [name, tensor] : tensors) {
    const std::string where = "cannot save " + path + ": tensor '" + name + "'";
    check(name != "__metadata__", where + ": the name is reserved for metadata");
    check(tensor.defined(), where + " is undefined");
    std::string dtype;
    try {
      dtype = dtype_name(tensor.scalar_type());
    } catch (const Error& e) {
      throw Error(where + ": " + e.what());
    }
    const uint64_t size = static_cast<uint64_t>(tensor.numel()) * tensor.element_size();
    header[name] = {{"dtype", dtype}, {"shape", tensor.sizes().vec()}, {"data_offsets", {offset, offset + size}}};
    sizes.push_back(size);
    offset += size;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {  // e.g. a name that is not valid UTF-8
    throw Error("cannot save " + path + ": " + e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // data then starts 8-aligned in the file

  AtomicFile out(path);
  const uint64_t header_size = text.size();
  out.write(&header_size, 8);  // little-endian host
  out.write(text.data(), text.size());
  size_t i = 0;
  for (const auto& entry : tensors) {
    // One tensor at a time on the CPU: the file is streamed, never assembled in memory.
    torch::Tensor source = entry.second.detach();
    if (source.is_sparse()) source = source.to_dense();
    torch::Tensor cpu = source.to(torch::kCPU).contiguous();
    if (sizes[i] > 0) out.write(cpu.data_ptr(), sizes[i]);
    ++i;
  }
  out.commit();
}

}  // namespace peft::safetensors
