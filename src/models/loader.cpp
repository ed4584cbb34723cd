#include "models/loader.h"

#include <set>

#include "core/device.h"
#include "core/error.h"
#include "core/strings.h"
#include "io/safetensors.h"
#include "models/llama/llama.h"

namespace peft {
namespace {

std::string shape_string(c10::IntArrayRef shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

}  // namespace

std::shared_ptr<CausalLM> make_model(const ModelConfig& config, const torch::TensorOptions& options) {
  // One explicit list of families; hf_config.cpp has already rejected unsupported architectures.
  if (config.architecture == "LlamaForCausalLM" || config.architecture == "MistralForCausalLM" ||
      config.architecture == "Qwen2ForCausalLM") {
    return std::make_shared<LlamaForCausalLM>(config, options);
  }
  throw Error("no model family implements architecture '" + config.architecture + "'");
}

std::shared_ptr<CausalLM> load_model(const std::string& directory, const LoadOptions& options) {
  ModelConfig config = load_model_config(directory);
  auto checkpoint = safetensors::Checkpoint::open_directory(directory);
  auto device = resolve_device(options.device);
  auto model = make_model(config, torch::TensorOptions().dtype(parse_dtype(options.dtype)).device(device));

  torch::NoGradGuard no_grad;
  std::set<std::string> used;
  for (auto& item : model->named_parameters(/*recurse=*/true)) {
    const std::string& name = item.key();
    check(checkpoint.contains(name), checkpoint.describe() + ": tensor '" + name + "' required by " +
                                         config.architecture + " is missing (is this the right model directory?)");
    auto source = checkpoint.tensor(name);
    check(source.sizes() == item.value().sizes(), checkpoint.describe() + ": tensor '" + name + "' has shape " +
                                                      shape_string(source.sizes()) + " but config.json implies " +
                                                      shape_string(item.value().sizes()));
    item.value().copy_(source);
    used.insert(name);
  }
  std::vector<std::string> unused;
  for (const auto& name : checkpoint.names()) {
    if (!used.count(name)) unused.push_back(name);
  }
  if (!unused.empty()) {
    spdlog::warn("{}: {} tensor(s) not used by {} (first: {})", checkpoint.describe(), unused.size(),
                 config.architecture, unused.front());
  }
  model->freeze();
  return model;
}

}  // namespace peft
