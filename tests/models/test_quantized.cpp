// The quantized base (model.quantize, models/quantized_weight.h, io/bitsandbytes.h) against the float64 reference
// (scripts/reference/make_quant_fixtures.py, tests/fixtures/quant/README.md): codes, scales and dequantized weights
// bit for bit, logits of a quantized model, a checkpoint in bitsandbytes' layout, the autograd of the quantized
// product, and the refusals.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "io/safetensors.h"
#include "models/export.h"
#include "models/loader.h"
#include "models/quantized_weight.h"
#include "parity_testing.h"
#include "peft/adapter_io.h"
#include "peft/lora.h"
#include "peft/registry.h"
#include "test_util.h"

namespace peft {
namespace {

namespace fs = std::filesystem;

std::string quant(const std::string& relative) { return test::fixture("quant/" + relative); }

std::map<std::string, torch::Tensor> read_all(const std::string& path) {
  auto file = safetensors::File::open(path);
  std::map<std::string, torch::Tensor> out;
  for (const auto& name : file->names()) out[name] = file->tensor(name).clone();
  return out;
}

std::shared_ptr<CausalLM> load_quantized(const std::string& directory, const std::string& quantize,
                                         bool double_quant = false, const std::string& dtype = "float32") {
  LoadOptions options{dtype, "cpu"};
  options.quantize = quantize;
  options.double_quant = double_quant;
  return load_model(directory, options);
}

void expect_equal(const torch::Tensor& actual, const torch::Tensor& expected, const std::string& what) {
  ASSERT_EQ(actual.sizes(), expected.sizes()) << what;
  ASSERT_EQ(actual.scalar_type(), expected.scalar_type()) << what;
  EXPECT_TRUE(torch::equal(actual, expected))
      << what << ": max difference "
      << (actual.to(torch::kDouble) - expected.to(torch::kDouble)).abs().max().item<double>();
}

TEST(QuantizedWeight, CodesScalesAndValuesMatchTheReferenceBitForBit) {
  auto cases = read_all(quant("cases.safetensors"));
  expect_equal(dynamic_code_book(), cases.at("nested_code_book"), "dynamic code book");
  for (const std::string name : {"odd", "wide"}) {
    const auto& weight = cases.at(name + ".weight");
    auto nf4 = quantize_nf4(weight);
    expect_equal(nf4.codes, cases.at(name + ".nf4.codes"), name + " nf4 codes");
    expect_equal(nf4.absmax, cases.at(name + ".nf4.absmax"), name + " nf4 absmax");
    expect_equal(nf4.dequantize(torch::kFloat), cases.at(name + ".nf4.dequantized"), name + " nf4 values");

    auto nested = quantize_nf4(weight, 64, /*double_quant=*/true);
    expect_equal(nested.codes, cases.at(name + ".nf4_double.codes"), name + " double codes");
    expect_equal(nested.absmax_codes, cases.at(name + ".nf4_double.absmax_codes"), name + " absmax codes");
    expect_equal(nested.nested_absmax, cases.at(name + ".nf4_double.nested_absmax"), name + " nested absmax");
    EXPECT_EQ(nested.nested_offset, cases.at(name + ".nf4_double.nested_offset").item<float>()) << name;
    expect_equal(nested.dequantize(torch::kFloat), cases.at(name + ".nf4_double.dequantized"), name + " double values");

    auto int8 = quantize_int8(weight);
    expect_equal(int8.codes, cases.at(name + ".int8.codes"), name + " int8 codes");
    expect_equal(int8.absmax, cases.at(name + ".int8.scale"), name + " int8 scales");
    expect_equal(int8.dequantize(torch::kFloat), cases.at(name + ".int8.dequantized"), name + " int8 values");
  }
}

TEST(QuantizedWeight, HoldsTwoCodesPerByteAndOneScalePerBlock) {
  auto weight = torch::randn({64, 256});
  auto nf4 = quantize_nf4(weight);
  EXPECT_EQ(nf4.bytes(), 64 * 256 / 2 + 64 * 256 / 64 * 4 + 16 * 4);
  auto nested = quantize_nf4(weight, 64, true);
  EXPECT_EQ(nested.bytes(), 64 * 256 / 2 + 64 * 256 / 64 + 4 + 16 * 4 + 256 * 4);
  EXPECT_EQ(quantize_int8(weight).bytes(), 64 * 256 + 64 * 4);
  // Every value lands on its block's nearest level: within half the widest gap of the block maximum.
  auto error = (nf4.dequantize(torch::kFloat) - weight).abs().max().item<double>();
  EXPECT_LT(error, 0.17 * weight.abs().max().item<double>());
}

// A quantized model's projections hold the reference's dequantized weights exactly, and its logits equal the
// float64 forward on those weights.
TEST(QuantizedModel, WeightsAndLogitsMatchTheReference) {
  for (const auto& [label, quantize, double_quant] : std::vector<std::tuple<std::string, std::string, bool>>{
           {"nf4", "nf4", false}, {"nf4_double", "nf4", true}, {"int8", "int8", false}}) {
    auto model = load_quantized(test::fixture("llama/llama_plain"), quantize, double_quant);
    auto dequantized = read_all(quant("llama_plain_" + label + "/dequantized.safetensors"));
    int64_t quantized = 0;
    for (auto& [path, projection] : model->projections()) {
      if (projection.get() == model->head().get()) {
        EXPECT_FALSE(projection->quantized()) << "the output head stays dense";
        continue;
      }
      ASSERT_TRUE(projection->quantized()) << path;
      EXPECT_EQ(projection->named_parameters(false).find("weight"), nullptr) << path << ": weight still a parameter";
      expect_equal(projection->dense_weight(), dequantized.at(path + ".weight"), label + " " + path);
      ++quantized;
    }
    EXPECT_EQ(quantized, static_cast<int64_t>(dequantized.size())) << label;
    auto expected = test::read_expected(quant("llama_plain_" + label + "/expected.safetensors"));
    EXPECT_LT(test::relative_error(test::logits_of(*model, expected), expected), 2e-5) << label;
  }
}

TEST(QuantizedModel, BitsandbytesCheckpointLoadsToTheSameWeights) {
  auto dequantized = read_all(quant("llama_plain_nf4_double/dequantized.safetensors"));
  auto expected = test::read_expected(quant("llama_plain_nf4_double/expected.safetensors"));
  // Kept in 4 bits under nf4, dequantized otherwise (and re-quantized under int8).
  auto four_bit = load_quantized(quant("llama_plain_bnb_nf4"), "nf4");
  auto dense = load_quantized(quant("llama_plain_bnb_nf4"), "none");
  for (auto& [path, projection] : four_bit->projections()) {
    if (!dequantized.count(path + ".weight")) continue;
    ASSERT_TRUE(projection->quantized()) << path;
    EXPECT_TRUE(projection->quantized()->double_quantized()) << path;
    expect_equal(projection->dense_weight(), dequantized.at(path + ".weight"), "nf4 " + path);
  }
  for (auto& [path, projection] : dense->projections()) {
    if (!dequantized.count(path + ".weight")) continue;
    EXPECT_FALSE(projection->quantized()) << path;
    expect_equal(projection->weight, dequantized.at(path + ".weight"), "dense " + path);
  }
  EXPECT_LT(test::relative_error(test::logits_of(*four_bit, expected), expected), 2e-5);
  EXPECT_LT(test::relative_error(test::logits_of(*dense, expected), expected), 2e-5);
  auto int8 = load_quantized(quant("llama_plain_bnb_nf4"), "int8");
  for (auto& [path, projection] : int8->projections()) {
    if (dequantized.count(path + ".weight")) {
      EXPECT_EQ(projection->quantized()->kind, QuantKind::int8) << path;
    }
  }
}

// y = x·Wᵀ and the input's gradient equal the dense product's on the dequantized weight; W takes no gradient.
TEST(QuantizedLinear, ForwardAndInputGradientEqualTheDenseProduct) {
  torch::manual_seed(3);
  for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
    auto weight = std::make_shared<const QuantizedWeight>(quantize_nf4(torch::randn({12, 70}), 64, true));
    auto x = torch::randn({3, 5, 70}).to(dtype).requires_grad_();
    auto y = quantized_linear(x, weight);
    auto upstream = torch::randn_like(y);
    (y * upstream).sum().backward();
    auto x_dense = x.detach().clone().requires_grad_();
    auto dense = weight->dequantize(dtype);
    auto y_dense = torch::nn::functional::linear(x_dense, dense);
    (y_dense * upstream).sum().backward();
    EXPECT_TRUE(torch::equal(y, y_dense)) << dtype;
    EXPECT_TRUE(torch::equal(x.grad(), x_dense.grad())) << dtype;
    EXPECT_EQ(y.scalar_type(), dtype);
  }
  // No input gradient wanted: no graph.
  auto weight = std::make_shared<const QuantizedWeight>(quantize_int8(torch::randn({4, 6})));
  EXPECT_FALSE(quantized_linear(torch::randn({2, 6}), weight).requires_grad());
}

// LoRA on an NF4 base trains as on any base, and the adapter it writes is an ordinary one (PEFT's QLoRA
// convention): reloaded on the same quantized base it gives the trained logits; peft-merge's path writes a dense
// model equal to the merged quantized one.
TEST(QuantizedModel, LoraTrainsSavesAndMergesDense) {
  auto model = load_quantized(test::fixture("llama/llama_plain"), "nf4");
  auto options = std::make_shared<LoraOptions>();
  options->r = 4;
  options->lora_alpha = 8;
  options->target_modules.list = {"q_proj", "v_proj", "down_proj"};
  auto lora = make_lora(options);
  lora->attach(*model);
  std::vector<torch::Tensor> parameters;
  for (const auto& parameter : lora->trainable_parameters()) parameters.push_back(parameter.tensor);
  torch::optim::Adam optimizer(parameters, torch::optim::AdamOptions(1e-2));
  auto expected = test::read_expected(test::fixture("llama/llama_plain/expected.safetensors"));
  auto batch_ids = expected.input_ids;
  std::vector<double> losses;
  model->train();
  for (int step = 0; step < 5; ++step) {
    optimizer.zero_grad();
    auto logits = model->logits(batch_ids, expected.attention_mask);
    auto loss =
        torch::nn::functional::cross_entropy(logits.narrow(1, 0, logits.size(1) - 1).reshape({-1, logits.size(2)}),
                                             batch_ids.narrow(1, 1, batch_ids.size(1) - 1).reshape({-1}));
    losses.push_back(loss.item<double>());
    loss.backward();
    optimizer.step();
  }
  EXPECT_LT(losses.back(), losses.front());
  auto trained = test::logits_of(*model, expected);

  std::string dir = test::temp_dir("quantized-lora");
  save_adapter(dir, *lora, "llama_plain");
  auto config = nlohmann::json::parse(test::read_text(dir + "/adapter_config.json"));
  EXPECT_EQ(config["peft_type"], "LORA");
  auto again = load_quantized(test::fixture("llama/llama_plain"), "nf4");
  load_adapter(dir, *again);
  EXPECT_TRUE(torch::equal(test::logits_of(*again, expected), trained));

  lora->merge(*model);
  for (auto& [path, projection] : model->projections()) {
    bool adapted = path.find("q_proj") != std::string::npos || path.find("v_proj") != std::string::npos ||
                   path.find("down_proj") != std::string::npos;
    if (adapted) {
      EXPECT_FALSE(projection->quantized()) << path << ": merged into its dequantized weight";
    }
  }
  auto merged = test::logits_of(*model, expected);
  EXPECT_TRUE(torch::allclose(merged, trained, 1e-5, 1e-5));
  std::string out = test::temp_dir("quantized-merged");
  save_model_directory(*model, test::fixture("llama/llama_plain"), out, torch::kFloat);
  auto written = nlohmann::json::parse(test::read_text(out + "/config.json"));
  EXPECT_FALSE(written.contains("quantization_config"));
  auto reloaded = load_model(out, {"float32", "cpu"});
  EXPECT_TRUE(torch::equal(test::logits_of(*reloaded, expected), merged));
}

// PiSSA on a quantized base keeps the residual quantized as the base was (its reason to exist under QLoRA);
// DoRA reads the dequantized weight for its norms.
TEST(QuantizedModel, PissaAndDoraStartWhereTheBaseIs) {
  auto expected = test::read_expected(test::fixture("llama/llama_plain/expected.safetensors"));
  for (const std::string variant : {"pissa", "dora"}) {
    auto model = load_quantized(test::fixture("llama/llama_plain"), "nf4");
    auto base = test::logits_of(*model, expected);
    auto options = std::make_shared<LoraOptions>();
    options->r = 2;
    options->lora_alpha = 4;
    options->target_modules.list = {"q_proj", "v_proj"};
    if (variant == "pissa") options->init_lora_weights = "pissa";
    options->use_dora = variant == "dora";
    auto lora = make_lora(options);
    lora->attach(*model);
    for (auto& [path, projection] : model->projections()) {
      if (projection.get() != model->head().get()) {
        EXPECT_TRUE(projection->quantized()) << variant << " " << path;
      }
    }
    auto start = test::logits_of(*model, expected);
    double scale = base.abs().max().item<double>();
    // DoRA starts exactly where LoRA does; PiSSA up to the residual's re-quantization.
    double limit = variant == "dora" ? 1e-5 : 0.1;
    EXPECT_LT((start - base).abs().max().item<double>() / scale, limit) << variant;
  }
}

std::string copy_fixture(const std::string& tag) {
  std::string dir = test::temp_dir(tag);
  for (const auto& entry : fs::directory_iterator(quant("llama_plain_bnb_nf4"))) {
    fs::copy_file(entry.path(), fs::path(dir) / entry.path().filename(), fs::copy_options::overwrite_existing);
  }
  return dir;
}

// Rewrites one tensor of the copy's model.safetensors.
void replace_tensor(const std::string& dir, const std::string& name, const torch::Tensor& value) {
  auto tensors = read_all(dir + "/model.safetensors");
  if (value.defined()) {
    tensors[name] = value;
  } else {
    tensors.erase(name);
  }
  safetensors::save(dir + "/model.safetensors", tensors);
}

torch::Tensor json_bytes(const std::string& text) {
  std::vector<uint8_t> bytes(text.begin(), text.end());
  return torch::tensor(std::vector<int64_t>(bytes.begin(), bytes.end())).to(torch::kUInt8);
}

TEST(QuantizedModel, BadCheckpointsAreRefusedInOneLine) {
  const std::string key = "model.layers.0.self_attn.q_proj.weight";
  auto error_loading = [&](const std::string& dir) { return test::error_of([&] { load_quantized(dir, "nf4"); }); };
  {
    auto dir = copy_fixture("bnb-truncated");
    replace_tensor(dir, key + ".absmax", read_all(dir + "/model.safetensors").at(key + ".absmax").slice(0, 0, 3));
    std::string message = error_loading(dir);
    EXPECT_NE(message.find(key + ": absmax holds 3 values, 9 blocks of 64 need one each"), std::string::npos)
        << message;
  }
  {
    auto dir = copy_fixture("bnb-packed");
    replace_tensor(dir, key, read_all(dir + "/model.safetensors").at(key).slice(0, 0, 100));
    std::string message = error_loading(dir);
    EXPECT_NE(message.find("the packed weight holds 100 bytes, its shape [24, 24] needs 288"), std::string::npos)
        << message;
  }
  {
    auto dir = copy_fixture("bnb-state");
    replace_tensor(dir, key + ".quant_state.bitsandbytes__nf4", json_bytes("{\"quant_type\": \"nf4\", \"blocks"));
    std::string message = error_loading(dir);
    EXPECT_NE(message.find("the quant state is not valid JSON"), std::string::npos) << message;
  }
  {
    auto dir = copy_fixture("bnb-nested");
    replace_tensor(dir, key + ".nested_absmax", torch::Tensor());
    std::string message = error_loading(dir);
    EXPECT_NE(message.find("the quant state lacks '" + key + ".nested_absmax'"), std::string::npos) << message;
  }
  {
    auto dir = copy_fixture("bnb-shape");
    replace_tensor(dir, key + ".quant_state.bitsandbytes__nf4",
                   json_bytes("{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float32\", \"shape\": "
                              "[24, 32], \"nested_blocksize\": 256, \"nested_offset\": 0.1}"));
    std::string message = error_loading(dir);
    EXPECT_NE(message.find("quant state shape [24,32] but config.json implies [24, 24]"), std::string::npos) << message;
  }
  for (const auto& [setting, expected] : std::vector<std::pair<std::string, std::string>>{
           {R"("bnb_4bit_quant_type": "fp4")", "bitsandbytes 4-bit type 'fp4' is not supported (nf4 is)"},
           {R"("load_in_8bit": true)", "an 8-bit bitsandbytes checkpoint (LLM.int8: int8 weight + SCB) is not"},
           {R"("quant_method": "gptq")", "quantization_config.quant_method 'gptq' is not supported"},
       }) {
    auto dir = copy_fixture("bnb-config");
    auto config = nlohmann::json::parse(test::read_text(dir + "/config.json"));
    auto change = nlohmann::json::parse("{" + setting + "}");
    for (const auto& item : change.items()) config["quantization_config"][item.key()] = item.value();
    test::write_text(dir + "/config.json", config.dump(2));
    std::string message = error_loading(dir);
    EXPECT_NE(message.find(dir + "/config.json: "), std::string::npos) << message;
    EXPECT_NE(message.find(expected), std::string::npos) << message;
  }
  {
    std::string message =
        test::error_of([&] { load_quantized(test::fixture("torchscript/stories260k_traced/model.pt"), "nf4"); });
    EXPECT_NE(message.find("model.quantize applies to Hugging Face model directories"), std::string::npos) << message;
  }
}

TEST(QuantizedModel, FullFineTuningIsRefused) {
  auto model = load_quantized(test::fixture("llama/llama_plain"), "int8");
  auto full = find_method("full").make_method(find_method("full").make_options());
  std::string message = test::error_of([&] { full->attach(*model); });
  EXPECT_NE(message.find("full fine-tuning trains every weight, and model.layers.0.self_attn.q_proj is stored "
                         "quantized"),
            std::string::npos)
      << message;
}

}  // namespace
}  // namespace peft
