// safetensors reading (memory-mapped, validated) and writing (atomic).
// Format: u64 little-endian header length N, N bytes of JSON header, then the data buffer.
// See ../shared/docs/FORMATS.md for everything the reader validates.
#pragma once

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace peft::safetensors {

struct TensorInfo {
  std::string dtype_name;      // as written in the header: "F32", "BF16", ...
  torch::Dtype dtype;          // the matching torch dtype
  std::vector<int64_t> shape;  // row-major
  uint64_t begin = 0;          // byte offsets relative to the data buffer
  uint64_t end = 0;
};

// One .safetensors file, memory-mapped for as long as any tensor taken from it is alive.
class File {
 public:
  // Opens and validates the whole header; throws peft::Error naming the path and the problem.
  static std::shared_ptr<File> open(const std::string& path);
  ~File();

  const std::string& path() const { return path_; }
  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool contains(const std::string& name) const { return tensors_.count(name) > 0; }
  std::vector<std::string> names() const;

  // A CPU tensor over the mapped bytes (copy-on-write mapping: writes never reach the file). It keeps the
  // mapping alive. Throws peft::Error for an unknown name.
  torch::Tensor tensor(const std::string& name) const;

 private:
  File() = default;
  std::string path_;
  void* mapping_ = nullptr;
  size_t mapping_size_ = 0;
  size_t data_start_ = 0;  // 8 + N
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
  std::weak_ptr<File> self_;
};

// All weights of an HF model directory: model.safetensors, or the shards that
// model.safetensors.index.json lists (validated: every listed file exists and holds its tensors).
class Checkpoint {
 public:
  static Checkpoint open_directory(const std::string& directory);
  static Checkpoint open_file(const std::string& path);

  bool contains(const std::string& name) const { return location_.count(name) > 0; }
  std::vector<std::string> names() const;
  const TensorInfo& info(const std::string& name) const;
  torch::Tensor tensor(const std::string& name) const;  // throws peft::Error naming the missing tensor
  std::string describe() const;                         // the file or directory, for messages

 private:
  std::string description_;
  std::vector<std::shared_ptr<File>> files_;
  std::map<std::string, size_t> location_;  // tensor name -> index into files_
};

// Writes tensors (any device/dtype/layout; written contiguous, on CPU) with keys sorted and the header
// padded to 8 bytes. Atomic: a temporary file in the same directory is flushed, fsynced and renamed, so a
// crash never leaves a half-written file under `path`. Throws peft::Error on I/O failure.
void save(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
          const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

// "F32" <-> torch dtype.
torch::Dtype dtype_from_name(const std::string& name);  // throws peft::Error for unknown names
std::string dtype_name(torch::Dtype dtype);

}  // namespace peft::safetensors
