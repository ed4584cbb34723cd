#include "models/layers.h"

#include <limits>

namespace peft {

TokenEmbeddingImpl::TokenEmbeddingImpl(int64_t vocab_size, int64_t dim, const torch::TensorOptions& options) {
  weight = register_parameter("weight", torch::empty({vocab_size, dim}, options), /*requires_grad=*/false);
}

LayerNormImpl::LayerNormImpl(int64_t size, double eps_, const torch::TensorOptions& options) : eps(eps_) {
  weight = register_parameter("weight", torch::empty({size}, options), /*requires_grad=*/false);
  bias = register_parameter("bias", torch::empty({size}, options), /*requires_grad=*/false);
}

torch::Tensor LayerNormImpl::forward(const torch::Tensor& x) {
  return torch::layer_norm(x, {x.size(-1)}, weight, bias, eps);
}

torch::Tensor attention_mask_bias(const torch::Tensor& attention_mask, int64_t prefix_length, bool causal,
                                  int64_t window) {
  int64_t length = attention_mask.size(1);
  auto device = attention_mask.device();
  torch::Tensor visible = torch::ones({1, 1, length, length}, torch::dtype(torch::kBool).device(device));
  if (causal) visible = visible.tril();
  if (window > 0) visible = visible.triu(-(window - 1));  // i - j < window
  // Smallest and largest value in one host read: 0 means padding, more than 1 a packed row.
  int64_t lowest_value = 1, highest_value = 1;
  if (attention_mask.numel() > 0) {
    auto [low, high] = torch::aminmax(attention_mask);
    auto range = torch::stack({low, high}).to(torch::kCPU);
    lowest_value = range[0].item<int64_t>(), highest_value = range[1].item<int64_t>();
  }
  if (lowest_value == 0) visible = visible & attention_mask.to(torch::kBool).view({-1, 1, 1, length});
  if (highest_value > 1) {
    // Block-diagonal: queries and keys of the same packed example.
    visible = visible & (attention_mask.view({-1, 1, length, 1}) == attention_mask.view({-1, 1, 1, length}));
  }
  if (prefix_length > 0) {
    auto prefix = torch::ones({visible.size(0), 1, length, prefix_length}, visible.options());
    if (window > 0) {  // query i is at position P + i, prefix key k at position k
      auto query = torch::arange(length, torch::dtype(torch::kLong).device(device)).view({length, 1}) + prefix_length;
      auto key = torch::arange(prefix_length, torch::dtype(torch::kLong).device(device)).view({1, prefix_length});
      prefix = prefix & ((query - key) < window).view({1, 1, length, prefix_length});
    }
    visible = torch::cat({prefix, visible.expand({visible.size(0), 1, length, length})}, -1);
  }
  auto zero = torch::zeros({}, torch::dtype(torch::kFloat).device(device));
  auto lowest = torch::full({}, std::numeric_limits<float>::lowest(), torch::dtype(torch::kFloat).device(device));
  return torch::where(visible, zero, lowest);
}

torch::Tensor packed_positions(const torch::Tensor& attention_mask) {
  if (attention_mask.numel() == 0 || attention_mask.max().item<int64_t>() <= 1) return {};
  int64_t length = attention_mask.size(1);
  auto index = torch::arange(length, attention_mask.options()).expand_as(attention_mask);
  // Where each example starts: the first column, and wherever the example number changes.
  auto changes = torch::ones_like(attention_mask, torch::kBool);
  changes.narrow(1, 1, length - 1)
      .copy_(attention_mask.narrow(1, 1, length - 1) != attention_mask.narrow(1, 0, length - 1));
  auto start = std::get<0>(torch::where(changes, index, torch::zeros_like(index)).cummax(1));
  return index - start;
}

torch::Tensor scaled_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& mask, double scale, double softcap) {
  auto scores = torch::matmul(q, k.transpose(-2, -1)).mul_(scale);
  if (softcap > 0) scores = torch::tanh(scores / softcap) * softcap;
  auto weights = torch::softmax(scores.to(torch::kFloat).add_(mask), -1).to(q.scalar_type());
  return torch::matmul(weights, v);
}

}  // namespace peft
