// Bottleneck adapters (METHODS.md "Adapters"): identity / near-identity at init, the parallel adapter's input,
// gradients, parameter count, our own adapter format and option errors, on the tiny fixture models.
#include <gtest/gtest.h>

#include <functional>
#include <set>

#include "config/section.h"
#include "core/error.h"
#include "data/batch.h"
#include "method_testing.h"
#include "models/loader.h"
#include "peft/adapter.h"
#include "peft/adapter_io.h"
#include "peft/registry.h"
#include "test_util.h"
#include "train/loss.h"

namespace peft {
namespace {

using test::error_of;
using test::fixture_model;
using test::logits;
using test::sample_ids;

std::shared_ptr<AdapterOptions> adapter_options(const std::string& placement, const std::string& sites = "both",
                                                int64_t r = 4) {
  auto options = std::make_shared<AdapterOptions>();
  options->placement = placement;
  options->sites = sites;
  options->r = r;
  return options;
}

// Gives every adapter tensor (W_up and biases included) values that change the function.
void randomise(Method& method) {
  torch::NoGradGuard no_grad;
  for (auto& parameter : method.trainable_parameters()) parameter.tensor.normal_(0.0, 0.3);
}

std::string read_error(const std::string& yaml) {
  AdapterOptions options;
  auto section = Section::from_yaml_string(yaml, "cfg.yaml", "peft");
  return error_of([&] { options.read(section); });
}

TEST(Adapter, ParallelIsExactIdentityAtInit) {
  for (std::string name : {"llama_gqa_tied", "llama_plain"}) {
    auto model = fixture_model(name);
    auto before = logits(*model);
    auto adapter = make_adapter(adapter_options("parallel"));
    adapter->attach(*model);
    EXPECT_EQ(adapter->targets().size(), static_cast<size_t>(2 * model->config().num_hidden_layers));
    EXPECT_TRUE(torch::equal(before, logits(*model))) << name;  // W_up = 0, b_up = 0: adds exact zeros
  }
}

TEST(Adapter, SerialHoulsbyInitIsNearButNotExactIdentity) {
  for (std::string name : {"llama_gqa_tied", "llama_plain"}) {
    auto model = fixture_model(name);
    auto before = logits(*model);
    auto adapter = make_adapter(adapter_options("serial", "both", 16));
    adapter->attach(*model);
    auto after = logits(*model);
    double difference = (after - before).abs().max().item<double>();
    double size = before.abs().max().item<double>();
    EXPECT_GT(difference, 0.0) << name;
    EXPECT_LT(difference, 1e-2 * size) << name << " " << difference << " vs " << size;
    for (const auto& parameter : adapter->trainable_parameters()) {
      bool bias = parameter.name.size() > 5 && parameter.name.substr(parameter.name.size() - 5) == ".bias";
      if (bias) {
        EXPECT_EQ(parameter.tensor.abs().max().item<double>(), 0.0) << parameter.name;
      } else {  // N(0, 1e-2) truncated at 2σ
        EXPECT_LE(parameter.tensor.abs().max().item<double>(), 2e-2) << parameter.name;
        EXPECT_GT(parameter.tensor.std().item<double>(), 5e-3) << parameter.name;
      }
    }
  }
}

// The parallel adapter reads the sub-layer's NORMALISED input: checked at layer 0's attention, whose residual
// input is the embedding rows and whose normalised input we compute here by hand (RMSNorm).
class Capture : public SublayerHook {
 public:
  torch::Tensor apply(int64_t layer, Sublayer sublayer, const torch::Tensor& normed_input, const torch::Tensor&,
                      const torch::Tensor& output) override {
    if (layer == 0 && sublayer == Sublayer::attention) outputs.push_back(output.clone());
    return output;
  }
  std::vector<torch::Tensor> outputs;
};

TEST(Adapter, ParallelReadsNormalisedSublayerInput) {
  auto model = fixture_model("llama_plain");
  auto options = adapter_options("parallel", "attn", 8);
  options->activation = "tanh";
  options->scaling = 2.5;
  auto adapter = make_adapter(options);
  auto before = std::make_shared<Capture>(), after = std::make_shared<Capture>();
  model->hooks.sublayer.push_back(before);  // sees F's output h
  adapter->attach(*model);
  model->hooks.sublayer.push_back(after);  // sees h + s·A(x)
  randomise(*adapter);
  logits(*model);
  ASSERT_EQ(before->outputs.size(), 1u);
  ASSERT_EQ(after->outputs.size(), 1u);

  auto named = model->named_parameters();
  auto ids = sample_ids();
  auto x = named["model.embed_tokens.weight"].index_select(0, ids.flatten()).view({ids.size(0), ids.size(1), -1});
  double eps = model->config().rms_norm_eps;
  auto normed = x * torch::rsqrt(x.pow(2).mean(-1, true) + eps) * named["model.layers.0.input_layernorm.weight"];
  auto adapter_of = [&](const torch::Tensor& z) {
    auto w = [&](const std::string& key) { return named["model.layers.0.attn_adapter." + key]; };
    auto hidden = torch::tanh(torch::matmul(z, w("down.weight").t()) + w("down.bias"));
    return 2.5 * (torch::matmul(hidden, w("up.weight").t()) + w("up.bias"));
  };
  auto expected = before->outputs[0] + adapter_of(normed);
  EXPECT_TRUE(torch::allclose(after->outputs[0], expected, 1e-4, 1e-5))
      << (after->outputs[0] - expected).abs().max().item<double>();
  // ... and not the raw residual stream, nor F's output (the test can tell them apart).
  EXPECT_GT((after->outputs[0] - (before->outputs[0] + adapter_of(x))).abs().max().item<double>(), 1e-3);
  EXPECT_GT((after->outputs[0] - (before->outputs[0] + adapter_of(before->outputs[0]))).abs().max().item<double>(),
            1e-3);
}

TEST(Adapter, SerialAddsAdapterOfSublayerOutput) {
  auto model = fixture_model("llama_plain");
  auto adapter = make_adapter(adapter_options("serial", "ffn", 8));  // Pfeiffer placement
  auto before = std::make_shared<Capture>(), after = std::make_shared<Capture>();
  adapter->attach(*model);
  EXPECT_EQ(adapter->targets().front(), "model.layers.0.ffn_adapter");
  // Layer 0's attention has no adapter with sites: ffn, so h passes unchanged.
  model->hooks.sublayer.insert(model->hooks.sublayer.begin(), before);
  model->hooks.sublayer.push_back(after);
  randomise(*adapter);
  logits(*model);
  ASSERT_EQ(after->outputs.size(), 1u);
  EXPECT_TRUE(torch::equal(before->outputs[0], after->outputs[0]));
}

TEST(Adapter, TrainNormsTrainsBothNormsOfEveryBlock) {
  for (bool train_norms : {false, true}) {
    auto model = fixture_model("llama_gqa_tied");
    auto options = adapter_options("parallel", "both", 4);
    options->train_norms = train_norms;
    auto adapter = make_adapter(options);
    adapter->attach(*model);
    int norms = 0;
    for (const auto& parameter : adapter->trainable_parameters()) {
      norms += parameter.name.find("layernorm") != std::string::npos;
    }
    EXPECT_EQ(norms, train_norms ? 2 * model->config().num_hidden_layers : 0);
  }
}

TEST(Adapter, TrainableCountMatchesFormula) {
  struct Case {
    std::string sites;
    int64_t count;
    bool train_norms;
  };
  for (const Case& k : {Case{"both", 2, false}, Case{"attn", 1, false}, Case{"ffn", 1, true}}) {
    auto model = fixture_model("llama_plain");
    auto options = adapter_options("serial", k.sites, 8);
    options->train_norms = k.train_norms;
    auto adapter = make_adapter(options);
    adapter->attach(*model);
    const auto& c = model->config();
    int64_t d = c.hidden_size, r = 8;
    int64_t expected = k.count * c.num_hidden_layers * (2 * d * r + r + d);
    if (k.train_norms) expected += c.num_hidden_layers * 2 * d;
    int64_t trainable = 0, requiring_grad = 0;
    for (const auto& parameter : adapter->trainable_parameters()) {
      trainable += parameter.tensor.numel();
      EXPECT_EQ(parameter.tensor.scalar_type(), torch::kFloat) << parameter.name;
      bool weight = parameter.name.find("adapter") != std::string::npos &&
                    parameter.name.substr(parameter.name.size() - 7) == ".weight";
      EXPECT_EQ(parameter.weight_decay, weight) << parameter.name;  // biases and norms: no decay
    }
    for (const auto& parameter : model->parameters()) {
      if (parameter.requires_grad()) requiring_grad += parameter.numel();
    }
    EXPECT_EQ(trainable, expected) << k.sites;
    EXPECT_EQ(requiring_grad, expected) << k.sites;
    // Registered on the decoder layer: the model's own names are the adapter's names.
    auto named = model->named_parameters();
    for (const auto& parameter : adapter->trainable_parameters()) EXPECT_TRUE(named.contains(parameter.name));
  }
}

TEST(Adapter, ReductionFactorSetsWidth) {
  auto model = fixture_model("llama_plain");
  auto options = std::make_shared<AdapterOptions>();
  auto section = Section::from_yaml_string("placement: serial\nsites: ffn\nreduction_factor: 4\n", "cfg.yaml", "peft");
  options->read(section);
  auto adapter = make_adapter(options);
  adapter->attach(*model);
  auto tensors = adapter->adapter_tensors();
  int64_t d = model->config().hidden_size;
  EXPECT_EQ(tensors.at("base_model.model.model.layers.0.ffn_adapter.down.weight").sizes(),
            (std::vector<int64_t>{d / 4, d}));
  EXPECT_EQ(adapter->adapter_config("x")["r"], d / 4);
}

TEST(Adapter, SavedAdapterRecordsItsSettings) {
  auto model = fixture_model("llama_gqa_tied");
  auto options = adapter_options("parallel", "both", 4);
  options->activation = "gelu";
  options->scaling = 2.0;
  options->train_norms = true;
  auto adapter = make_adapter(options);
  adapter->attach(*model);
  randomise(*adapter);
  std::string dir = test::temp_dir("adapter-save");
  save_adapter(dir, *adapter, "tests/fixtures/llama/llama_gqa_tied");

  auto config = nlohmann::json::parse(test::read_text(dir + "/adapter_config.json"));
  std::set<std::string> keys;
  for (const auto& item : config.items()) keys.insert(item.key());
  EXPECT_EQ(keys, (std::set<std::string>{"activation", "auto_mapping", "base_model_name_or_path", "inference_mode",
                                         "init", "modules_to_save", "peft_type", "placement", "r", "revision",
                                         "scaling", "sites", "task_type", "train_norms"}));
  EXPECT_EQ(config["peft_type"], "BOTTLENECK_ADAPTER");
  EXPECT_EQ(config["placement"], "parallel");
  EXPECT_EQ(config["init"], "lora");
  EXPECT_EQ(config["activation"], "gelu");
  EXPECT_EQ(config["scaling"], 2.0);
  EXPECT_EQ(config["train_norms"], true);
  EXPECT_EQ(config["r"], 4);
  EXPECT_TRUE(adapter->adapter_tensors().count("base_model.model.model.layers.1.input_layernorm.weight"));

  // A file that disagrees with its config is refused, naming the tensor.
  config["sites"] = "ffn";
  test::write_text(dir + "/adapter_config.json", config.dump(2));
  auto other = fixture_model("llama_gqa_tied");
  std::string message = error_of([&] { load_adapter(dir, *other); });
  EXPECT_NE(message.find("sites, r or train_norms"), std::string::npos) << message;
}

TEST(Adapter, MergeThrows) {
  auto model = fixture_model();
  auto adapter = make_adapter(adapter_options("serial"));
  adapter->attach(*model);
  EXPECT_EQ(error_of([&] { adapter->merge(*model); }),
            "bottleneck adapters cannot be merged into the base weights (they add a nonlinear module)");
}

TEST(Adapter, OptionErrors) {
  std::string message = read_error("r: 8\nreduction_factor: 16\n");
  EXPECT_NE(message.find("cfg.yaml:2"), std::string::npos) << message;
  EXPECT_NE(message.find("peft.reduction_factor: give either r or reduction_factor"), std::string::npos) << message;

  message = read_error("placement: serial\nscaling: 4.0\n");
  EXPECT_NE(message.find("peft.scaling: applies only to placement: parallel"), std::string::npos) << message;
  message = read_error("scaling: 2.0\n");  // serial by default
  EXPECT_NE(message.find("peft.scaling"), std::string::npos) << message;

  message = read_error("activation: relu6\n");
  EXPECT_NE(message.find("peft.activation: expected one of relu, gelu, silu, tanh"), std::string::npos) << message;
  message = read_error("placement: paralel\n");
  EXPECT_NE(message.find("did you mean 'parallel'?"), std::string::npos) << message;
  message = read_error("r: 0\n");
  EXPECT_NE(message.find("peft.r: must be at least 1"), std::string::npos) << message;

  AdapterOptions parallel;
  auto section = Section::from_yaml_string("placement: parallel\nscaling: 2.0\n", "cfg.yaml", "peft");
  parallel.read(section);
  EXPECT_EQ(parallel.scaling, 2.0);
  EXPECT_EQ(parallel.init, "lora");
  EXPECT_EQ(parallel.sites, "both");
  AdapterOptions serial;
  auto plain = Section::from_yaml_string("train_norms: true\n", "cfg.yaml", "peft");
  serial.read(plain);
  EXPECT_EQ(serial.init, "houlsby");
  EXPECT_EQ(serial.r, 64);
  EXPECT_EQ(serial.activation, "relu");

  auto bad =
      nlohmann::json{{"peft_type", "BOTTLENECK_ADAPTER"}, {"placement", "serial"}, {"r", 8}, {"activation", "elu"}};
  message = error_of([&] { AdapterOptions::from_adapter_config(bad); });
  EXPECT_NE(message.find("'activation' must be one of"), std::string::npos) << message;
}

TEST(Adapter, RegisteredUnderPeftType) {
  EXPECT_EQ(find_method("adapter").peft_type, "BOTTLENECK_ADAPTER");
  EXPECT_EQ(find_method_by_peft_type("BOTTLENECK_ADAPTER").name, "adapter");
}

}  // namespace
}  // namespace peft
