// Bad model directories end in one clear peft::Error, never a crash.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "io/safetensors.h"
#include "models/loader.h"
#include "test_util.h"

namespace peft {
namespace {

namespace fs = std::filesystem;

// A copy of a fixture model whose config.json or weights the test then breaks.
std::string copy_fixture(const std::string& name, const std::string& tag) {
  std::string dir = test::temp_dir(tag);
  for (const auto& entry : fs::directory_iterator(test::fixture("llama/" + name))) {
    fs::copy(entry.path(), fs::path(dir) / entry.path().filename());
  }
  return dir;
}

std::string load_error(const std::string& dir) {
  try {
    load_model(dir, {"float32", "cpu"});
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ModelErrors, MissingDirectory) {
  EXPECT_NE(load_error("/nonexistent/model").find("model directory not found: /nonexistent/model"), std::string::npos);
}

TEST(ModelErrors, MissingConfig) {
  std::string dir = copy_fixture("llama_plain", "noconfig");
  fs::remove(dir + "/config.json");
  EXPECT_NE(load_error(dir).find("no config.json"), std::string::npos);
}

TEST(ModelErrors, MissingWeights) {
  std::string dir = copy_fixture("llama_plain", "noweights");
  fs::remove(dir + "/model.safetensors");
  EXPECT_NE(load_error(dir).find("no model.safetensors"), std::string::npos);
}

TEST(ModelErrors, UnsupportedArchitectureListsSupported) {
  std::string dir = copy_fixture("llama_plain", "arch");
  std::string text = test::read_text(dir + "/config.json");
  text.replace(text.find("LlamaForCausalLM"), 16, "FalconForCausalLM");
  test::write_text(dir + "/config.json", text);
  std::string error = load_error(dir);
  EXPECT_NE(error.find("unsupported architecture 'FalconForCausalLM'"), std::string::npos) << error;
  EXPECT_NE(error.find("LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM"), std::string::npos) << error;
}

TEST(ModelErrors, InvalidConfigJson) {
  std::string dir = copy_fixture("llama_plain", "badjson");
  test::write_text(dir + "/config.json", "{\"architectures\": [");
  EXPECT_NE(load_error(dir).find("config.json: invalid JSON"), std::string::npos);
}

TEST(ModelErrors, ShapeDisagreeingWithConfig) {
  std::string dir = copy_fixture("llama_plain", "shape");
  std::string text = test::read_text(dir + "/config.json");
  auto json = nlohmann::json::parse(text);
  json["intermediate_size"] = json["intermediate_size"].get<int64_t>() + 8;
  test::write_text(dir + "/config.json", json.dump());
  std::string error = load_error(dir);
  EXPECT_NE(error.find("model.layers.0.mlp.gate_proj.weight' has shape"), std::string::npos) << error;
  EXPECT_NE(error.find("config.json implies"), std::string::npos) << error;
}

TEST(ModelErrors, MissingTensor) {
  std::string dir = copy_fixture("llama_plain", "missing");
  auto file = safetensors::File::open(dir + "/model.safetensors");
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& name : file->names()) {
    if (name != "model.norm.weight") tensors[name] = file->tensor(name).clone();
  }
  file.reset();
  safetensors::save(dir + "/model.safetensors", tensors);
  std::string error = load_error(dir);
  EXPECT_NE(error.find("tensor 'model.norm.weight' required by LlamaForCausalLM is missing"), std::string::npos)
      << error;
}

TEST(ModelErrors, TruncatedWeights) {
  std::string dir = copy_fixture("llama_plain", "truncated");
  fs::resize_file(dir + "/model.safetensors", fs::file_size(dir + "/model.safetensors") / 2);
  std::string error = load_error(dir);
  EXPECT_NE(error.find(dir + "/model.safetensors"), std::string::npos) << error;
}

}  // namespace
}  // namespace peft

#include "models/llama/names.h"

namespace peft {
namespace {

// The module tree registers exactly the HF names of the family's table, for every config variant.
TEST(LlamaNames, ModuleTreeMatchesTheNameTable) {
  for (const char* name : {"llama_plain", "llama_gqa_tied", "qwen2_bias", "mistral_head_dim", "llama_mlp_bias"}) {
    auto model = load_model(test::fixture(std::string("llama/") + name), {"float32", "cpu"});
    std::set<std::string> registered, expected;
    for (const auto& item : model->named_parameters()) registered.insert(item.key());
    for (const auto& tensor : llama::tensor_names(model->config())) expected.insert(tensor);
    EXPECT_EQ(registered, expected) << name;
  }
}

}  // namespace
}  // namespace peft
