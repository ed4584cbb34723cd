#include "models/export.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/strings.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "models/llama/names.h"
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

bool has_bias(const std::map<std::string, torch::Tensor>& parameters, const std::string& layer,
              const std::vector<std::string>& projections) {
  for (const auto& projection : projections) {
    if (parameters.count(layer + projection + ".bias")) return true;
  }
  return false;
}

}  // namespace

void save_model_directory(Transformer& model, const std::string& base_directory, const std::string& out_directory,
                          torch::Dtype dtype) {
  check(fs::absolute(base_directory) != fs::absolute(out_directory),
        "the output directory must differ from the base model directory " + base_directory);
  std::map<std::string, torch::Tensor> parameters;
  for (const auto& item : model.named_parameters()) parameters[item.key()] = item.value().detach();

  // Declare biases a method added, for the groups HF's config can express.
  ModelConfig config = model.config();
  std::vector<std::string> attention = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"};
  std::vector<std::string> mlp = {"mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};
  bool attention_bias = false, output_bias = false, mlp_bias = false;
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    std::string layer = "model.layers." + std::to_string(i) + ".";
    attention_bias |= has_bias(parameters, layer, {attention[0], attention[1], attention[2]});
    output_bias |= has_bias(parameters, layer, {attention[3]});
    mlp_bias |= has_bias(parameters, layer, mlp);
  }
  nlohmann::json json = config.raw;
  std::vector<std::string> names = model.tensor_names();
  if (config.architecture == "GPT2LMHeadModel" || config.is_encoder()) {
    // Every GPT-2 and BERT projection has its bias already: a method cannot have added one the format lacks.
  } else if (config.architecture == "LlamaForCausalLM") {
    config.attention_bias = config.output_bias = attention_bias || output_bias;
    config.mlp_bias = mlp_bias;
    json["attention_bias"] = config.attention_bias;
    json["mlp_bias"] = config.mlp_bias;
  } else {
    // Mistral has no bias options; Qwen2 has fixed q/k/v biases only.
    check(attention_bias == config.attention_bias && output_bias == config.output_bias && !mlp_bias,
          config.architecture +
              "'s config.json cannot declare the biases this adapter added; merge is "
              "possible for LlamaForCausalLM only (or keep the adapter unmerged)");
  }

  std::map<std::string, torch::Tensor> tensors;
  if (config.architecture == "LlamaForCausalLM") names = llama::tensor_names(config);  // with declared biases
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
