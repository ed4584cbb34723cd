#include "models/torchscript/archive.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/version.h>

#include <filesystem>

#include "core/error.h"
#include "core/strings.h"

namespace peft {
namespace {

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

std::unique_ptr<caffe2::serialize::PyTorchStreamReader> open_archive(const std::string& path) {
  check(std::filesystem::is_regular_file(path), "model file not found: " + path);
  try {
    return std::make_unique<caffe2::serialize::PyTorchStreamReader>(path);
  } catch (const c10::Error& e) {
    throw Error(path +
                ": not a TorchScript archive (not a zip file: a legacy torch.save() pickle?); export the "
                "model with torch.jit.script(model).save(path) or torch.jit.trace");
  }
}

}  // namespace

void check_torchscript_archive(const std::string& path) {
  auto archive = open_archive(path);
  bool code = false;
  for (const auto& record : archive->getAllRecords()) code |= starts_with(record, "code/");
  check(code, path + ": not a TorchScript archive but " +
                  (archive->hasRecord("data.pkl") ? std::string("a torch.save() pickle (a state_dict or a whole model)")
                                                  : std::string("a zip without TorchScript code")) +
                  "; export the model with torch.jit.script(model).save(path) or torch.jit.trace(model, inputs)"
                  ".save(path)");
}

std::optional<std::string> torchscript_extra_file(const std::string& path, const std::string& name) {
  auto archive = open_archive(path);
  std::string record = "extra/" + name;
  if (!archive->hasRecord(record)) return std::nullopt;
  auto [data, size] = archive->getRecord(record);
  return std::string(static_cast<const char*>(data.get()), size);
}

torch::jit::Module load_torchscript(const std::string& path) {
  check_torchscript_archive(path);
  try {
    return torch::jit::load(path, torch::kCPU);
  } catch (const c10::Error& e) {
    throw Error(path + ": cannot load the TorchScript archive (written by a newer PyTorch than " + TORCH_VERSION +
                "?): " + first_line(e.what_without_backtrace()));
  }
}

}  // namespace peft
