// Feeds: the bytes of one .safetensors file to safetensors::File::open (the header parser and its validation of
// dtypes, shapes and offsets), then reads every tensor it accepts (sums it) and writes the file back with
// safetensors::save, which must read back identically.
// A finding: a crash or sanitizer report (an out-of-bounds read means the validation let a bad shape or offset
// through), an exception other than peft::Error, a peft::Error message of more than one line, an allocation
// beyond -malloc_limit_mb (the reader trusted a size from the file), or a round trip that differs (abort).
#include <cstdlib>
#include <cstring>

#include "fuzz_util.h"
#include "io/safetensors.h"

namespace {

bool same_bytes(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return false;
  torch::Tensor x = a.contiguous(), y = b.contiguous();
  return x.nbytes() == 0 || std::memcmp(x.data_ptr(), y.data_ptr(), x.nbytes()) == 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string input = peft::fuzz::scratch_dir() + "/input.safetensors";
  static const std::string copy = peft::fuzz::scratch_dir() + "/copy.safetensors";
  peft::fuzz::write_input(input, data, size);
  std::map<std::string, torch::Tensor> tensors;
  std::map<std::string, std::string> metadata;
  bool accepted = peft::fuzz::reads([&] {
    auto file = peft::safetensors::File::open(input);
    metadata = file->metadata();
    for (const auto& name : file->names()) {
      torch::Tensor tensor = file->tensor(name);
      volatile double sum = tensor.sum().item<double>();  // touches every byte the header claims
      (void)sum;
      tensors[name] = tensor;
    }
  });
  if (!accepted) return 0;
  peft::safetensors::save(copy, tensors, metadata);
  auto reread = peft::safetensors::File::open(copy);
  if (reread->names().size() != tensors.size() || reread->metadata() != metadata) std::abort();
  for (const auto& [name, tensor] : tensors) {
    if (!same_bytes(reread->tensor(name), tensor)) std::abort();
  }
  return 0;
}
