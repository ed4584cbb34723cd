// Reading a TorchScript archive (torch.jit.save's zip): telling it from other files (a torch.save() pickle), its
// extra files (config.json saved with _extra_files), and the module itself.
#pragma once

#include <torch/script.h>

#include <optional>
#include <string>

namespace peft {

// Throws peft::Error naming `path` when it is not a TorchScript archive, saying what it is instead when that
// is recognisable (a state_dict or model pickled by torch.save()).
void check_torchscript_archive(const std::string& path);

// The archive's extra file `name` (extra/<name>), if it has one.
std::optional<std::string> torchscript_extra_file(const std::string& path, const std::string& name);

// torch::jit::load on the CPU, with its failures as one-line peft::Errors naming the file.
torch::jit::Module load_torchscript(const std::string& path);

}  // namespace peft
