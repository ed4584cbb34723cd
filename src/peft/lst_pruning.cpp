#include "peft/lst_pruning.h"

#include <utility>

#include "core/error.h"
#include "core/strings.h"
#include "data/batch.h"
#include "models/causal_lm.h"
#include "train/loss.h"

namespace peft {
namespace {

// Turns gradients on for the backbone's parameters and the side network off for as long as it lives.
class BackboneGradients {
 public:
  BackboneGradients(CausalLM& model, std::vector<torch::Tensor> parameters)
      : model_(model), parameters_(std::move(parameters)), stack_(std::exchange(model.hooks.stack, nullptr)) {
    for (auto& parameter : parameters_) parameter.set_requires_grad(true);
  }
  ~BackboneGradients() {
    for (auto& parameter : parameters_) parameter.set_requires_grad(false);
    model_.hooks.stack = stack_;
  }

 private:
  CausalLM& model_;
  std::vector<torch::Tensor> parameters_;
  std::shared_ptr<StackHook> stack_;
};

// Importance of each index along `axis`: the Fisher tensor summed over its other dimensions, for every
// dimension of the parameter that indexes `axis`.
void add_importance(const torch::Tensor& fisher, const std::vector<Axis>& axes, Axis axis, torch::Tensor& into) {
  for (size_t dim = 0; dim < axes.size(); ++dim) {
    if (axes[dim] != axis) continue;
    std::vector<int64_t> others;
    for (size_t other = 0; other < axes.size(); ++other) {
      if (other != dim) others.push_back(static_cast<int64_t>(other));
    }
    into += others.empty() ? fisher : fisher.sum(others);
  }
}

// The k most important indices along the last dimension, in ascending index order.
torch::Tensor top_sorted(const torch::Tensor& importance, int64_t k) {
  auto indices = std::get<1>(importance.topk(k, /*dim=*/-1));
  return std::get<0>(indices.sort(/*dim=*/-1));
}

}  // namespace

std::map<std::string, torch::Tensor> fisher_information(CausalLM& model, const std::vector<Example>& examples,
                                                        int64_t count, int64_t pad_id, const std::string& skip_prefix) {
  std::vector<std::string> names;
  std::vector<torch::Tensor> parameters;
  for (const auto& item : model.named_parameters()) {
    if (starts_with(item.key(), skip_prefix)) continue;
    names.push_back(item.key());
    parameters.push_back(item.value());
  }
  std::vector<torch::Tensor> sums;
  for (const auto& parameter : parameters) sums.push_back(torch::zeros(parameter.sizes(), torch::kFloat));

  BackboneGradients enabled(model, parameters);
  auto device = model.input_embeddings().device();
  int64_t used = std::min<int64_t>(count, static_cast<int64_t>(examples.size()));
  for (int64_t n = 0; n < used; ++n) {
    Batch batch = collate({&examples[static_cast<size_t>(n)]}, pad_id).to(device);
    if (batch.scored_tokens == 0) continue;
    auto loss = causal_lm_loss(model, batch);
    auto gradients = torch::autograd::grad({loss}, parameters, /*grad_outputs=*/{}, /*retain_graph=*/false,
                                           /*create_graph=*/false, /*allow_unused=*/true);
    for (size_t i = 0; i < gradients.size(); ++i) {
      if (gradients[i].defined()) sums[i] += gradients[i].to(torch::kCPU, torch::kFloat).square();
    }
  }
  std::map<std::string, torch::Tensor> fisher;
  for (size_t i = 0; i < names.size(); ++i) fisher.emplace(names[i], sums[i]);
  return fisher;
}

torch::Tensor prune_into(BlockStack& side, CausalLM& model, const std::map<std::string, torch::Tensor>& fisher,
                         const std::vector<int64_t>& layers, int64_t reduction_factor) {
  const auto& c = model.config();
  StackLayout layout = model.stack_layout();
  auto fisher_of = [&](const std::string& name) -> const torch::Tensor& {
    auto it = fisher.find(name);
    check(it != fisher.end(), "internal: no Fisher information for " + name);
    return it->second;
  };
  auto block_name = [&](int64_t layer, const std::string& name) {
    return layout.stack_prefix + layout.blocks + "." + std::to_string(layer) + "." + name;
  };

  // The residual stream: one choice of hidden dims for every block.
  auto hidden_importance = torch::zeros({c.hidden_size});
  for (int64_t layer = 0; layer < c.num_hidden_layers; ++layer) {
    for (const auto& p : layout.block) {
      add_importance(fisher_of(block_name(layer, p.name)), p.axes, Axis::hidden, hidden_importance);
    }
  }
  for (const auto& p : layout.outside_blocks) {
    add_importance(fisher_of(layout.stack_prefix + p.name), p.axes, Axis::hidden, hidden_importance);
  }
  torch::Tensor hidden = top_sorted(hidden_importance, c.hidden_size / reduction_factor);

  int64_t n_kv = c.num_key_value_heads, n_rep = c.num_attention_heads / n_kv, d_h = c.head_dim;
  int64_t kept_head_dims = d_h / reduction_factor, kept_ff = c.intermediate_size / reduction_factor;
  auto backbone = model.named_parameters();
  auto side_parameters = side.named_parameters();
  torch::NoGradGuard no_grad;
  auto copy = [&](const std::string& from, const std::string& to, const std::vector<Axis>& axes,
                  const std::map<Axis, torch::Tensor>& kept) {
    torch::Tensor value = backbone[from];
    for (size_t dim = 0; dim < axes.size(); ++dim) {
      auto it = kept.find(axes[dim]);
      if (it != kept.end()) value = value.index_select(static_cast<int64_t>(dim), it->second.to(value.device()));
    }
    auto* target = side_parameters.find(to);
    check(target != nullptr && target->sizes() == value.sizes(),
          "internal: side network parameter " + to + " does not fit the pruned " + from);
    target->copy_(value);
  };

  for (size_t k = 0; k < layers.size(); ++k) {
    int64_t layer = layers[k];
    // Head dims per key/value head: a query head's importance counts for the key/value head it reads.
    auto head_importance = torch::zeros({n_kv, d_h});
    auto feed_forward_importance = torch::zeros({c.intermediate_size});
    for (const auto& p : layout.block) {
      const auto& f = fisher_of(block_name(layer, p.name));
      auto queries = torch::zeros({c.num_attention_heads * d_h});
      add_importance(f, p.axes, Axis::query_heads, queries);
      head_importance += queries.view({n_kv, n_rep, d_h}).sum(1);
      auto keys_values = torch::zeros({n_kv * d_h});
      add_importance(f, p.axes, Axis::kv_heads, keys_values);
      head_importance += keys_values.view({n_kv, d_h});
      auto fused = torch::zeros({3 * n_kv * d_h});  // [queries; keys; values] without grouping: n_kv = n_h
      add_importance(f, p.axes, Axis::fused_qkv_heads, fused);
      head_importance += fused.view({3, n_kv, d_h}).sum(0);
      add_importance(f, p.axes, Axis::feed_forward, feed_forward_importance);
    }
    torch::Tensor dims;  // (n_kv, d_h') kept dims of each key/value head
    if (layout.rotary) {
      int64_t half = d_h / 2;
      auto pairs =
          top_sorted(head_importance.narrow(1, 0, half) + head_importance.narrow(1, half, half), kept_head_dims / 2);
      dims = torch::cat({pairs, pairs + half}, 1);
    } else {
      dims = top_sorted(head_importance, kept_head_dims);
    }
    auto kv_rows = (torch::arange(n_kv) * d_h).unsqueeze(1) + dims;
    auto query_heads = torch::arange(c.num_attention_heads);
    auto query_rows = (query_heads * d_h).unsqueeze(1) + dims.index_select(0, query_heads.div(n_rep, "floor"));
    int64_t query_width = c.num_attention_heads * d_h;
    auto fused_rows =
        torch::cat({query_rows.flatten(), query_rows.flatten() + query_width, query_rows.flatten() + 2 * query_width});
    std::map<Axis, torch::Tensor> kept = {{Axis::hidden, hidden},
                                          {Axis::query_heads, query_rows.flatten()},
                                          {Axis::kv_heads, kv_rows.flatten()},
                                          {Axis::fused_qkv_heads, fused_rows},
                                          {Axis::feed_forward, top_sorted(feed_forward_importance, kept_ff)}};
    for (const auto& p : layout.block) {
      copy(block_name(layer, p.name), layout.blocks + "." + std::to_string(k) + "." + p.name, p.axes, kept);
    }
  }
  for (const auto& p : layout.outside_blocks) {
    if (side_parameters.contains(p.name)) copy(layout.stack_prefix + p.name, p.name, p.axes, {{Axis::hidden, hidden}});
  }
  return hidden;
}

}  // namespace peft
