#include "models/loader.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "core/device.h"
#include "core/error.h"
#include "core/strings.h"
#include "io/bitsandbytes.h"
#include "io/safetensors.h"
#include "models/quantized_weight.h"
#include "models/registry.h"
#include "models/torchscript/archive.h"
#include "models/torchscript/script_model.h"

namespace peft {
namespace {

std::string shape_string(c10::IntArrayRef shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

// The parameters of a TorchScript module of a known family, looked up by name as in a safetensors checkpoint
// (its buffers are the module's own business: rotary frequencies, position ids).
class ScriptTensors {
 public:
  ScriptTensors(const torch::jit::Module& module, std::string path) : path_(std::move(path)) {
    for (const auto& item : module.named_parameters(/*recurse=*/true)) tensors_.emplace(item.name, item.value);
  }
  bool contains(const std::string& name) const { return tensors_.count(name) > 0; }
  torch::Tensor tensor(const std::string& name) const { return tensors_.at(name); }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& item : tensors_) out.push_back(item.first);
    return out;
  }
  std::string describe() const { return path_; }

 private:
  std::string path_;
  std::map<std::string, torch::Tensor> tensors_;
};

// A file (a TorchScript archive, or what claims to be one) rather than a Hugging Face directory.
bool is_archive(const std::string& path) {
  auto extension = std::filesystem::path(path).extension();
  return std::filesystem::is_regular_file(path) ||
         (!std::filesystem::exists(path) && (extension == ".pt" || extension == ".pth"));
}

// The 4-bit weight a bitsandbytes checkpoint stores under `stored`, if it stores one there (a TorchScript archive
// never does). `out`, `in`: the projection's [out, in].
std::optional<QuantizedWeight> stored_nf4(const safetensors::Checkpoint& checkpoint, const ModelConfig& config,
                                          const std::string& stored, int64_t out, int64_t in,
                                          const torch::Device& device, std::set<std::string>& used) {
  if (!config.bnb_nf4 || !has_bnb_quant_state(checkpoint, stored)) return std::nullopt;
  return read_bnb_4bit(checkpoint, stored, out, in, device, used);
}
std::optional<QuantizedWeight> stored_nf4(const ScriptTensors&, const ModelConfig&, const std::string&, int64_t,
                                          int64_t, const torch::Device&, std::set<std::string>&) {
  return std::nullopt;
}

// model.quantize: every projection but the output head and a classifier's head, by its weight's name.
std::map<std::string, Projection> projections_to_quantize(Transformer& model) {
  std::map<std::string, Projection> out;
  const ProjectionImpl* head = nullptr;
  if (auto* causal = dynamic_cast<CausalLM*>(&model)) head = causal->head().get();
  auto* classifier = dynamic_cast<SequenceClassifier*>(&model);
  for (auto& [path, projection] : model.projections()) {
    if (projection.get() == head) continue;
    if (classifier && (path == classifier->head_module() || starts_with(path, classifier->head_module() + "."))) {
      continue;
    }
    out.emplace(path + ".weight", projection);
  }
  return out;
}

}  // namespace

std::shared_ptr<CausalLM> make_model(const ModelConfig& config, const torch::TensorOptions& options) {
  auto model = std::dynamic_pointer_cast<CausalLM>(family_of(config.architecture).make(config, options, 0));
  check(model != nullptr, config.architecture + " is not a causal language model");
  return model;
}

namespace {

// Fills a new model of `config`'s family from `checkpoint` (a safetensors Checkpoint or ScriptTensors).
template <typename Checkpoint>
std::shared_ptr<Transformer> load_family(const ModelConfig& config, const Checkpoint& checkpoint,
                                         const std::string& directory, const LoadOptions& options, const char* hint) {
  auto device = resolve_device(options.device);
  auto dtype = parse_dtype(options.dtype);
  check_dtype_on_device(dtype, device);
  auto tensor_options = torch::TensorOptions().dtype(dtype).device(device);
  std::shared_ptr<Transformer> model;
  if (config.is_encoder()) {
    int64_t labels = options.num_labels > 0 ? options.num_labels : config.num_labels;
    check(labels >= 2, config.architecture + " in " + directory +
                           " is an encoder: it classifies, and config.json does not say how many labels (give the "
                           "data's labels, or --num-labels)");
    model = family_of(config.architecture).make(config, tensor_options, labels);
  } else {
    model = make_model(config, tensor_options);
  }
  auto* classifier = dynamic_cast<SequenceClassifier*>(model.get());
  torch::NoGradGuard no_grad;
  std::set<std::string> used;
  bool quantize = options.quantize != "none";
  QuantKind kind = quantize ? parse_quant_kind(options.quantize) : QuantKind::nf4;
  std::map<std::string, Projection> to_quantize;
  if (quantize) to_quantize = projections_to_quantize(*model);
  if (config.bnb_nf4 && options.quantize != "nf4") {
    spdlog::info("{}: a bitsandbytes nf4 checkpoint, dequantized to {}{}", checkpoint.describe(), options.dtype,
                 quantize ? " and quantized to " + options.quantize : " (model.quantize: nf4 keeps it in 4 bits)");
  }
  // Some checkpoints leave the base model's prefix out of every name (GPT-2's original files: "h.0..." for
  // "transformer.h.0..."); the first parameter decides which naming this file uses.
  std::string prefix = model->optional_name_prefix();
  auto parameters = model->named_parameters(/*recurse=*/true);
  bool prefix_omitted = !prefix.empty() && parameters.size() > 0 && !checkpoint.contains(parameters[0].key()) &&
                        starts_with(parameters[0].key(), prefix) &&
                        checkpoint.contains(parameters[0].key().substr(prefix.size()));
  const ModelFamily& family = family_of(config.architecture);
  std::string tower = family.checkpoint_prefix ? family.checkpoint_prefix(config) : "";
  for (auto& item : parameters) {
    const std::string& name = item.key();
    std::string stored = tower + (prefix_omitted && starts_with(name, prefix) ? name.substr(prefix.size()) : name);
    bool head = classifier && starts_with(name, classifier->head_module() + ".");
    if (head && options.new_head) {
      used.insert(stored);  // replaced on purpose: not an unused tensor worth a warning
      continue;
    }
    if (!checkpoint.contains(stored) && model->may_be_absent(name)) {
      // A task head the base model never had: it keeps the model's initialisation and trains.
      std::string module = name.substr(0, name.rfind('.'));
      if (classifier && !starts_with(module, classifier->head_module()) &&
          std::find(classifier->created_modules.begin(), classifier->created_modules.end(), module) ==
              classifier->created_modules.end()) {
        classifier->created_modules.push_back(module);
      }
      continue;
    }
    check(checkpoint.contains(stored), checkpoint.describe() + ": tensor '" + stored + "' required by " +
                                           config.architecture + " is missing" + hint);
    auto target = to_quantize.find(name);
    if (auto nf4 = item.value().dim() == 2 ? stored_nf4(checkpoint, config, stored, item.value().size(0),
                                                        item.value().size(1), device, used)
                                           : std::nullopt) {
      // Stored in 4 bits: kept so under nf4, otherwise dequantized as bitsandbytes does (float32, then cast).
      if (target != to_quantize.end() && kind == QuantKind::nf4) {
        target->second->set_quantized(std::make_shared<const QuantizedWeight>(std::move(*nf4)));
      } else if (target != to_quantize.end()) {
        target->second->set_quantized(
            std::make_shared<const QuantizedWeight>(quantize_weight(nf4->dequantize(dtype), kind, false)));
      } else {
        item.value().copy_(nf4->dequantize(dtype));
      }
      used.insert(stored);
      continue;
    }
    auto source = checkpoint.tensor(stored);
    bool transposed = model->stored_transposed(name);
    // A copy: sizes() of the temporary t() would dangle once the statement ends.
    std::vector<int64_t> expected = transposed ? item.value().t().sizes().vec() : item.value().sizes().vec();
    check(source.sizes() == expected,
          checkpoint.describe() + ": tensor '" + stored + "' has shape " + shape_string(source.sizes()) + " but " +
              (head ? "the data's " + std::to_string(classifier->num_labels()) + " labels imply "
                    : "config.json implies ") +
              shape_string(expected) + (transposed ? " (a Conv1D weight, stored [in, out])" : "") +
              (head ? " (set model.new_head: true to start a new head)" : ""));
    used.insert(stored);
    if (target != to_quantize.end()) {
      // Quantized from the weight as model.dtype holds it; the dense weight is never materialised.
      auto weight = (transposed ? source.t() : source).to(device, dtype);
      target->second->set_quantized(
          std::make_shared<const QuantizedWeight>(quantize_weight(weight, kind, options.double_quant)));
      continue;
    }
    item.value().copy_(transposed ? source.t() : source);
  }
  std::vector<std::string> unused;
  int64_t other_towers = 0;
  for (const auto& name : checkpoint.names()) {
    if (!starts_with(name, tower)) {
      ++other_towers;
    } else if (!used.count(name) && !model->expected_unused(name)) {
      unused.push_back(name);
    }
  }
  if (other_towers > 0) {
    spdlog::info("{}: the text model under '{}'; {} tensor(s) of the other towers are not used", checkpoint.describe(),
                 tower, other_towers);
  }
  if (!unused.empty()) {
    spdlog::warn("{}: {} tensor(s) not used by {} (first: {})", checkpoint.describe(), unused.size(),
                 config.architecture, unused.front());
  }
  model->freeze();
  return model;
}

}  // namespace

std::optional<ModelConfig> family_config(const std::string& path, const std::string& arch) {
  if (!is_archive(path)) return load_model_config(path);
  check_torchscript_archive(path);
  if (arch == "custom") return std::nullopt;
  auto parent = std::filesystem::path(path).parent_path();
  auto beside = (parent.empty() ? std::filesystem::path(".") : parent) / "config.json";
  std::optional<ModelConfig> config;
  if (auto text = torchscript_extra_file(path, "config.json")) {
    config = parse_model_config(*text, path + ":extra/config.json");
  } else if (std::filesystem::exists(beside)) {
    config = load_model_config(beside.parent_path().string());
  }
  if (arch == "auto") return config;
  check(config.has_value(), path + ": model.arch " + arch +
                                " needs the model's config.json: save it in the archive (torch.jit.save(module, path, "
                                "_extra_files={'config.json': ...})) or put it beside the file");
  check(config->model_type == arch,
        path + ": model.arch is " + arch + " but its config.json says model_type " + config->model_type);
  return config;
}

std::string tokenizer_location(const std::string& model_path, const std::string& tokenizer) {
  if (!tokenizer.empty()) return tokenizer;
  if (!is_archive(model_path)) return model_path;
  auto parent = std::filesystem::path(model_path).parent_path();
  return parent.empty() ? "." : parent.string();
}

std::shared_ptr<Model> load_base_model(const std::string& path, const LoadOptions& options) {
  auto config = family_config(path, options.arch);
  if (!is_archive(path)) {
    return load_family(*config, safetensors::Checkpoint::open_directory(path), path, options,
                       " (is this the right model directory?)");
  }
  check(options.quantize == "none", path +
                                        ": model.quantize applies to Hugging Face model directories; a TorchScript "
                                        "archive's weights are its own (quantize is refused)");
  auto module = load_torchscript(path);
  if (config) {
    return load_family(*config, ScriptTensors(module, path), path, options,
                       " (set model.arch: custom to train it as a module of unknown architecture)");
  }
  auto device = resolve_device(options.device);
  auto dtype = parse_dtype(options.dtype);
  check_dtype_on_device(dtype, device);
  auto model = std::make_shared<ScriptModel>(std::move(module), path, options.output, device, dtype);
  spdlog::info(
      "{}: a TorchScript module of unknown architecture ({}), {} linear layer(s): lora, ia3, bitfit and full "
      "apply",
      path, options.arch == "custom" ? "model.arch: custom" : "no config.json with it", model->projections().size());
  return model;
}

std::shared_ptr<Transformer> load_transformer(const std::string& path, const LoadOptions& options) {
  auto model = load_base_model(path, options);
  auto transformer = std::dynamic_pointer_cast<Transformer>(model);
  check(transformer != nullptr, path +
                                    " is a TorchScript module of an architecture the tool does not know; give "
                                    "its config.json (in the archive or beside it) if it is a supported family");
  return transformer;
}

std::shared_ptr<CausalLM> load_model(const std::string& directory, const LoadOptions& options) {
  auto model = load_transformer(directory, options);
  auto causal = std::dynamic_pointer_cast<CausalLM>(model);
  check(causal != nullptr, directory + " holds " + model->config().architecture +
                               ", an encoder: it classifies (data.task: classification) and does not generate text");
  return causal;
}

}  // namespace peft
