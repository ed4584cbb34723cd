#include "models/export.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "core/error.h"
#include "core/strings.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "models/registry.h"
#include "models/sequence_classifier.h"
#include "models/torchscript/archive.h"

namespace peft {
namespace {

namespace fs = std::filesystem;

// Files of an HF model directory that travel with the weights unchanged.
const std::vector<std::string> kTokenizerFiles = {"tokenizer.model",
                                                  "tokenizer.json",
                                                  "tokenizer_config.json",
                                                  "special_tokens_map.json",
                                                  "generation_config.json",
                                                  "vocab.json",
                                                  "merges.txt",
                                                  "encoder.json",
                                                  "vocab.bpe",
                                                  "vocab.txt"};

}  // namespace

void save_model_directory(Transformer& model, const std::string& base_directory, const std::string& out_directory,
                          torch::Dtype dtype) {
  check(fs::absolute(base_directory) != fs::absolute(out_directory),
        "the output directory must differ from the base model directory " + base_directory);
  std::map<std::string, torch::Tensor> parameters;
  for (const auto& item : model.named_parameters()) parameters[item.key()] = item.value().detach();
  // A quantized base is written dense (its dequantized weights): the model written is an ordinary checkpoint.
  for (auto& [path, projection] : model.projections()) {
    if (projection->quantized()) parameters[path + ".weight"] = projection->dense_weight();
  }

  // Biases a method added (BitFit on bias-less projections) are declared in config.json where the family's config
  // can express them; the name table then includes them.
  ModelConfig config = model.config();
  nlohmann::json json = config.raw;
  if (!config.tie_word_embeddings) json["tie_word_embeddings"] = false;  // untied by modules_to_save, or never tied
  json.erase("quantization_config");                                     // written dense, whatever it was read as
  std::vector<std::string> names = model.tensor_names();
  std::set<std::string> added;
  for (const auto& item : parameters) {
    if (ends_with(item.first, ".bias")) added.insert(item.first);
  }
  for (const auto& name : names) added.erase(name);
  if (!added.empty()) {
    const ModelFamily& family = family_of(config.architecture);
    check(static_cast<bool>(family.declare_biases),
          "internal: " + config.architecture + " has parameter '" + *added.begin() + "' outside its name table");
    family.declare_biases(added, config, json);
    names = family.tensor_names(config);
  }

  std::map<std::string, torch::Tensor> tensors;
  for (const auto& name : names) {
    auto it = parameters.find(name);
    if (it != parameters.end()) {
      // Conv1D weights go back to the checkpoint's [in, out] layout.
      auto value = model.stored_transposed(name) ? it->second.t().contiguous() : it->second;
      tensors[name] = value.to(torch::kCPU, dtype);
      continue;
    }
    // A bias of a declared group that no method trained: zero, so the function is unchanged.
    check(ends_with(name, ".bias"), "internal: model has no tensor '" + name + "'");
    std::string weight = name.substr(0, name.size() - 5) + ".weight";
    tensors[name] = torch::zeros({parameters.at(weight).size(0)}, torch::dtype(dtype));
  }

  if (auto* classifier = dynamic_cast<SequenceClassifier*>(&model)) {
    json["architectures"] = {config.model_type == "roberta" ? "RobertaForSequenceClassification"
                                                            : "BertForSequenceClassification"};
    nlohmann::json id2label = nlohmann::json::object(), label2id = nlohmann::json::object();
    for (int64_t i = 0; i < classifier->num_labels(); ++i) {
      id2label[std::to_string(i)] = "LABEL_" + std::to_string(i);
      label2id["LABEL_" + std::to_string(i)] = i;
    }
    json["id2label"] = id2label;
    json["label2id"] = label2id;
  }
  ensure_directory(out_directory);
  safetensors::save(out_directory + "/model.safetensors", tensors);
  json["torch_dtype"] = dtype == torch::kBFloat16 ? "bfloat16" : dtype == torch::kHalf ? "float16" : "float32";
  write_file_atomic(out_directory + "/config.json", json.dump(2) + "\n");
  // A TorchScript base (.pt) keeps its tokenizer files beside it.
  fs::path tokenizer_directory =
      fs::is_regular_file(base_directory) ? fs::path(base_directory).parent_path() : fs::path(base_directory);
  for (const auto& file : kTokenizerFiles) {
    fs::path source = tokenizer_directory / file;
    if (!fs::exists(source)) continue;
    std::ifstream in(source, std::ios::binary);
    std::string contents((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    write_file_atomic((fs::path(out_directory) / file).string(), contents);
  }
}

torch::Dtype stored_dtype(const std::string& base_directory) {
  if (fs::is_regular_file(base_directory)) {  // a TorchScript archive
    for (const auto& parameter : load_torchscript(base_directory).parameters()) {
      if (torch::isFloatingType(parameter.scalar_type())) return parameter.scalar_type();
    }
    throw Error(base_directory + " holds no floating-point parameter");
  }
  auto checkpoint = safetensors::Checkpoint::open_directory(base_directory);
  for (const auto& name : checkpoint.names()) {
    torch::Dtype dtype = checkpoint.info(name).dtype;
    if (torch::isFloatingType(dtype)) return dtype;
  }
  throw Error(checkpoint.describe() + " holds no floating-point tensor");
}

}  // namespace peft
