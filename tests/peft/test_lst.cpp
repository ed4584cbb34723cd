// Ladder Side-Tuning: the backbone is not in the backward graph, the trainable count is the side network's
// formula, pruning slices the backbone consistently (kept hidden dims everywhere, q/k/v/o head dims per key/value
// head with rotary pairs together, feed-forward units shared by gate/up/down), the backbone cache gives the same
// losses as recomputing, save -> load is bit-exact, and bad settings are refused in one line. Numerical parity
// with the independent reference is in tests/models/test_llama_parity.cpp.
#include <gtest/gtest.h>
#include <torch/csrc/autograd/functions/accumulate_grad.h>

#include <set>

#include "data/batch.h"
#include "method_testing.h"
#include "peft/adapter_io.h"
#include "peft/lst.h"
#include "train/loss.h"

namespace peft {
namespace {

using test::error_of;

std::shared_ptr<CausalLM> stories() { return load_model(test::source_dir() + "/third_party/stories260K-hf", {}); }

std::shared_ptr<LstOptions> lst_options(int64_t r = 4, std::vector<int64_t> layers = {}, bool cache = false) {
  auto options = std::make_shared<LstOptions>();
  options->reduction_factor = r;
  options->layers = std::move(layers);
  options->cache_backbone = cache;
  options->prune_examples = 6;
  return options;
}

// Training examples of a few lengths from the model's vocabulary.
std::vector<Example> examples(int64_t count = 6) {
  std::vector<Example> out;
  torch::manual_seed(7);
  for (int64_t i = 0; i < count; ++i) {
    int64_t length = 12 + 5 * (i % 3);
    auto ids = torch::randint(3, 500, {length}, torch::kLong);
    Example example;
    example.input_ids.assign(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + length);
    example.input_ids[0] = 1;
    example.labels = example.input_ids;
    out.push_back(std::move(example));
  }
  return out;
}

std::map<std::string, torch::Tensor> side_parameters(const Method& method) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : method.trainable_parameters()) out.emplace(p.name, p.tensor);
  return out;
}

TEST(Lst, TrainableCountIsTheSideNetworkFormula) {
  for (const auto& layers : {std::vector<int64_t>{}, std::vector<int64_t>{1, 3}}) {
    auto model = stories();
    auto method = make_lst(lst_options(4, layers));
    method->attach(*model);
    // stories260K: d 64, 8 query / 4 kv heads of 8, f 172 -> d' 16, head dim 2, f' 43.
    int64_t d = 64, dp = 16, qd = 8 * 2, kvd = 4 * 2, fp = 43;
    int64_t n = layers.empty() ? 5 : static_cast<int64_t>(layers.size());
    int64_t block = dp * qd + 2 * dp * kvd + qd * dp + 3 * dp * fp + 2 * dp;
    int64_t expected = (n + 1) * (d * dp + dp) + n + n * block + dp + (dp * d + d);
    int64_t trainable = 0, requiring = 0;
    for (const auto& p : method->trainable_parameters()) trainable += p.tensor.numel();
    for (const auto& p : model->parameters()) requiring += p.requires_grad() ? p.numel() : 0;
    EXPECT_EQ(trainable, expected);
    EXPECT_EQ(requiring, expected);  // the backbone stays frozen
    // α = 0 at the start: every gate is μ = σ(0) = ½.
    auto gates = side_parameters(*method).at("side_network.gates");
    EXPECT_TRUE(gates.eq(0).all().item<bool>());
  }
}

// Even with every backbone weight asking for gradients, none gets one: the backbone runs without autograd.
// The tied embedding doubles as the frozen LM head after the side network, so it stays frozen here.
TEST(Lst, BackboneIsNotInTheBackwardGraph) {
  auto model = stories();
  auto method = make_lst(lst_options());
  method->attach(*model);
  std::vector<torch::Tensor> backbone;
  for (const auto& item : model->named_parameters()) {
    if (item.key().rfind("side_network.", 0) == 0 || item.key() == "model.embed_tokens.weight") continue;
    item.value().set_requires_grad(true);
    backbone.push_back(item.value());
  }
  Batch batch;
  batch.input_ids = test::sample_ids();
  batch.attention_mask = torch::ones_like(batch.input_ids);
  batch.labels = batch.input_ids.clone();
  model->train();
  auto loss = causal_lm_loss(*model, batch);

  // Every leaf the graph reaches is a side-network parameter.
  std::set<const void*> side;
  for (const auto& p : method->trainable_parameters()) side.insert(p.tensor.unsafeGetTensorImpl());
  std::vector<torch::autograd::Node*> stack = {loss.grad_fn().get()};
  std::set<torch::autograd::Node*> seen;
  int64_t leaves = 0;
  while (!stack.empty()) {
    auto* node = stack.back();
    stack.pop_back();
    if (!node || !seen.insert(node).second) continue;
    if (auto* leaf = dynamic_cast<torch::autograd::AccumulateGrad*>(node)) {
      EXPECT_TRUE(side.count(leaf->variable.unsafeGetTensorImpl())) << "a non-side leaf in the graph";
      ++leaves;
    }
    for (const auto& edge : node->next_edges()) stack.push_back(edge.function.get());
  }
  EXPECT_EQ(leaves, static_cast<int64_t>(side.size()));
  loss.backward();
  for (const auto& tensor : backbone) EXPECT_FALSE(tensor.grad().defined());
  for (const auto& p : method->trainable_parameters()) EXPECT_TRUE(p.tensor.grad().defined()) << p.name;
}

// The pruned side network is the backbone restricted to kept units, the same units wherever they recur.
TEST(Lst, PruningKeepsConsistentUnits) {
  auto model = stories();
  auto method = make_lst(lst_options(4, {1, 3}));
  method->attach(*model);
  method->initialise_from_data(*model, examples(), 0);
  auto side = side_parameters(*method);
  auto backbone = model->named_parameters();

  // Down₀ selects the kept hidden dims; every Down is the same selection and Up its transpose.
  auto down = side.at("side_network.downsamplers.0.weight");
  ASSERT_EQ(down.sizes(), (std::vector<int64_t>{16, 64}));
  EXPECT_TRUE(down.sum(1).eq(1).all().item<bool>());
  auto hidden = down.argmax(1);
  EXPECT_TRUE((hidden.slice(0, 1) > hidden.slice(0, 0, -1)).all().item<bool>());  // ascending
  EXPECT_TRUE(side.at("side_network.downsamplers.2.weight").equal(down));
  EXPECT_TRUE(side.at("side_network.upsampler.weight").equal(down.t()));
  EXPECT_TRUE(side.at("side_network.stack.norm.weight").equal(backbone["model.norm.weight"].index_select(0, hidden)));

  for (auto [k, layer] : {std::pair<int, int>{0, 1}, {1, 3}}) {
    std::string from = "model.layers." + std::to_string(layer) + ".",
                to = "side_network.stack.layers." + std::to_string(k) + ".";
    EXPECT_TRUE(side.at(to + "input_layernorm.weight")
                    .equal(backbone[from + "input_layernorm.weight"].index_select(0, hidden)));
    // Feed-forward units: the rows of gate/up and the columns of down that were kept are the same units.
    auto gate = backbone[from + "mlp.gate_proj.weight"].index_select(1, hidden);  // (172, 16)
    auto kept_gate = side.at(to + "mlp.gate_proj.weight");                        // (43, 16)
    std::vector<int64_t> units;
    for (int64_t i = 0; i < kept_gate.size(0); ++i) {
      auto match = (gate == kept_gate[i]).all(1).nonzero();
      ASSERT_EQ(match.size(0), 1);
      units.push_back(match.item<int64_t>());
    }
    auto unit_index = torch::tensor(units);
    EXPECT_TRUE(side.at(to + "mlp.up_proj.weight")
                    .equal(backbone[from + "mlp.up_proj.weight"].index_select(0, unit_index).index_select(1, hidden)));
    EXPECT_TRUE(
        side.at(to + "mlp.down_proj.weight")
            .equal(backbone[from + "mlp.down_proj.weight"].index_select(0, hidden).index_select(1, unit_index)));

    // Head dims: per kv head a rotary pair (j, j + 4); query heads 2g, 2g+1 use kv head g's dims; o's columns
    // are the query rows.
    auto k_weight = backbone[from + "self_attn.k_proj.weight"].index_select(1, hidden).view({4, 8, 16});
    auto kept_k = side.at(to + "self_attn.k_proj.weight").view({4, 2, 16});
    std::vector<int64_t> query_rows;
    for (int64_t g = 0; g < 4; ++g) {
      std::vector<int64_t> dims;
      for (int64_t j = 0; j < 2; ++j) {
        auto match = (k_weight[g] == kept_k[g][j]).all(1).nonzero();
        ASSERT_EQ(match.size(0), 1);
        dims.push_back(match.item<int64_t>());
      }
      EXPECT_EQ(dims[1], dims[0] + 4);
      for (int64_t h : {2 * g, 2 * g + 1}) {
        for (int64_t dim : dims) query_rows.push_back(h * 8 + dim);
      }
    }
    auto q_index = torch::tensor(query_rows);
    EXPECT_TRUE(
        side.at(to + "self_attn.q_proj.weight")
            .equal(backbone[from + "self_attn.q_proj.weight"].index_select(0, q_index).index_select(1, hidden)));
    EXPECT_TRUE(
        side.at(to + "self_attn.o_proj.weight")
            .equal(backbone[from + "self_attn.o_proj.weight"].index_select(0, hidden).index_select(1, q_index)));
  }
}

// Pruning keeps the units with the largest summed squared gradients: recomputed here with plain backward().
TEST(Lst, PruningFollowsFisherImportance) {
  auto model = stories();
  auto method = make_lst(lst_options(4, {0}));
  method->attach(*model);
  auto data = examples(3);
  method->initialise_from_data(*model, data, 0);

  auto reference = stories();
  for (auto& p : reference->parameters()) p.set_requires_grad(true);
  auto gate_weight = reference->named_parameters()["model.layers.0.mlp.gate_proj.weight"];
  auto up = reference->named_parameters()["model.layers.0.mlp.up_proj.weight"];
  auto down = reference->named_parameters()["model.layers.0.mlp.down_proj.weight"];
  auto importance = torch::zeros({172});
  for (const auto& example : data) {
    for (auto& p : reference->parameters()) p.mutable_grad() = torch::Tensor();
    causal_lm_loss(*reference, collate({&example}, 0)).backward();
    importance += gate_weight.grad().square().sum(1) + up.grad().square().sum(1) + down.grad().square().sum(0);
  }
  auto expected_units = std::get<0>(std::get<1>(importance.topk(43)).sort());
  // The kept gate rows, found by value among the backbone's rows restricted to the kept hidden dims.
  auto hidden = side_parameters(*method).at("side_network.downsamplers.0.weight").argmax(1);
  auto gate = gate_weight.detach().index_select(1, hidden);
  auto kept = side_parameters(*method).at("side_network.stack.layers.0.mlp.gate_proj.weight");
  std::vector<int64_t> units;
  for (int64_t i = 0; i < kept.size(0); ++i) units.push_back((gate == kept[i]).all(1).nonzero().item<int64_t>());
  EXPECT_TRUE(torch::tensor(units).equal(expected_units));
}

double train_step(CausalLM& model, torch::optim::Optimizer& optimizer, const std::vector<const Example*>& batch) {
  optimizer.zero_grad();
  auto loss = causal_lm_loss(model, collate(batch, 0));
  loss.backward();
  optimizer.step();
  return loss.item<double>();
}

// Two epochs of the same batches: with the cache, epoch 2 never runs the backbone, and every loss is identical.
TEST(Lst, BackboneCacheGivesTheSameLosses) {
  auto data = examples(6);
  std::vector<std::vector<const Example*>> batches = {{&data[0], &data[1], &data[2]}, {&data[3], &data[4]}, {&data[5]}};
  std::vector<double> losses[2];
  for (bool cache : {false, true}) {
    auto model = stories();
    torch::manual_seed(3);
    auto method = make_lst(lst_options(4, {0, 2, 4}, cache));
    method->attach(*model);
    method->initialise_from_data(*model, data, 0);
    std::vector<torch::Tensor> parameters;
    for (const auto& p : method->trainable_parameters()) parameters.push_back(p.tensor);
    torch::optim::AdamW optimizer(parameters, torch::optim::AdamWOptions(1e-3));
    model->train();
    for (int epoch = 0; epoch < 2; ++epoch) {
      for (const auto& batch : batches) losses[cache].push_back(train_step(*model, optimizer, batch));
    }
    auto stats = backbone_cache_stats(*method);
    if (!cache) {
      EXPECT_FALSE(stats.has_value());
      continue;
    }
    ASSERT_TRUE(stats.has_value());
    EXPECT_EQ(stats->misses, 3);
    EXPECT_EQ(stats->hits, 3);
    EXPECT_EQ(stats->sequences, 6);
    int64_t tokens = 0;
    for (const auto& example : data) tokens += static_cast<int64_t>(example.input_ids.size());
    EXPECT_EQ(stats->bytes, tokens * 4 /* embeddings + 3 ladders */ * 64 * 4);
    // Evaluation does not use the cache.
    model->eval();
    torch::NoGradGuard no_grad;
    causal_lm_loss(*model, collate(batches[0], 0));
    EXPECT_EQ(backbone_cache_stats(*method)->misses, 3);
  }
  ASSERT_EQ(losses[0].size(), 6u);
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(losses[0][i], losses[1][i]) << "step " << i;
}

TEST(Lst, SaveLoadIsBitExact) {
  auto model = stories();
  auto method = make_lst(lst_options(2, {0, 4}));
  method->attach(*model);
  std::vector<torch::Tensor> parameters;
  for (const auto& p : method->trainable_parameters()) parameters.push_back(p.tensor);
  torch::optim::AdamW optimizer(parameters, torch::optim::AdamWOptions(1e-2));
  auto data = examples(2);
  model->train();
  train_step(*model, optimizer, {&data[0], &data[1]});
  model->eval();
  auto before = test::logits(*model);

  std::string dir = test::temp_dir("lst-save");
  save_adapter(dir, *method, "stories260K");
  auto config = read_adapter_config(dir);
  EXPECT_EQ(config["peft_type"], "LST");
  EXPECT_EQ(config["layers"], nlohmann::json({0, 4}));
  EXPECT_EQ(config["side_hidden_size"], 32);
  auto fresh = stories();
  auto loaded = load_adapter(dir, *fresh);
  fresh->eval();
  EXPECT_TRUE(test::logits(*fresh).equal(before));
  EXPECT_EQ(error_of([&] { loaded->merge(*fresh); }),
            "LST cannot be merged into the base weights (its side network runs beside the backbone)");

  // An adapter for other layers does not fit this model's side network.
  auto other = stories();
  auto other_method = make_lst(lst_options(2, {0, 1, 4}));
  other_method->attach(*other);
  auto tensors = method->adapter_tensors();
  EXPECT_EQ(error_of([&] { other_method->load_adapter_tensors(tensors); }),
            "adapter tensor 'base_model.model.side_network.gates' has shape [2], the model expects [3] (was it "
            "trained for another base model?)");
}

TEST(Lst, BadSettingsAreOneLine) {
  auto attach_error = [](std::shared_ptr<LstOptions> options, const std::string& fixture = "") {
    auto model = fixture.empty() ? stories() : test::fixture_model(fixture);
    return error_of([&] { make_lst(options)->attach(*model); });
  };
  EXPECT_EQ(attach_error(lst_options(4, {0, 5})),
            "peft.layers: layer 5 is out of range; the model has 5 layers (0 to 4)");
  EXPECT_EQ(attach_error(lst_options(4, {-1})),
            "peft.layers: layer -1 is out of range; the model has 5 layers (0 to 4)");
  EXPECT_EQ(attach_error(lst_options(4, {2, 2})), "peft.layers: layer 2 is listed twice");
  EXPECT_EQ(attach_error(lst_options(8)),
            "peft.reduction_factor 8 does not divide the model's intermediate_size 172 (the side network is 1/r as "
            "wide)");
  EXPECT_EQ(attach_error(lst_options(3)),
            "peft.reduction_factor 3 does not divide the model's hidden_size 64 (the side network is 1/r as wide)");
  // llama_gqa_tied: head dim 6, so r = 2 leaves 3, which rotary embeddings cannot pair.
  EXPECT_EQ(attach_error(lst_options(2), "llama_gqa_tied"),
            "peft.reduction_factor 2 leaves a head dim of 3; rotary embeddings need an even one");
}

}  // namespace
}  // namespace peft
