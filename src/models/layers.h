// Building blocks more than one model family uses: an embedding table, LayerNorm and the additive attention
// mask. Parameters are allocated uninitialised and frozen; load_model() fills them from the checkpoint.
#pragma once

#include <torch/torch.h>

namespace peft {

// A lookup table registered as `<name>.weight`, like nn.Embedding but left uninitialised for the loader.
class TokenEmbeddingImpl : public torch::nn::Module {
 public:
  TokenEmbeddingImpl(int64_t vocab_size, int64_t dim, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& ids) { return torch::embedding(weight, ids); }
  torch::Tensor weight;  // (V, d)
};
TORCH_MODULE(TokenEmbedding);

// LayerNorm with a weight and a bias (GPT-2, BERT).
class LayerNormImpl : public torch::nn::Module {
 public:
  LayerNormImpl(int64_t size, double eps, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;  // (d)
  double eps;
};
TORCH_MODULE(LayerNorm);

// Additive float32 mask (B or 1, 1, T, P + T) from attention_mask (B, T) (1 = token, 0 = padding): 0 where
// query t may see the key, the lowest float elsewhere (finite, so fully masked padding rows give uniform
// weights instead of NaN). `causal` hides later keys; the P prefix keys are visible to every query (they hold
// positions 0..P-1 before the sequence's). A packed row (data/packing.h) numbers its examples 1, 2, ... in
// attention_mask: a token then sees only its own example's. `window` > 0 is a sliding window: query i sees key j
// only when i - j < window, positions counted with the prefix first (as transformers' sliding-window mask).
torch::Tensor attention_mask_bias(const torch::Tensor& attention_mask, int64_t prefix_length, bool causal = true,
                                  int64_t window = 0);

// Positions (B, T) that restart at 0 with each example of a packed attention_mask; undefined when no row is
// packed (every value 0 or 1), where positions are simply 0..T-1.
torch::Tensor packed_positions(const torch::Tensor& attention_mask);

// softmax(q·kᵀ·scale + mask)·v for q (B, n_h, T, d_h), k and v (B, n_h, S, d_h), the softmax in float32 as
// HF's eager attention computes it (a no-op cast for float32 models). `softcap` > 0 caps the scores before the
// mask: cap·tanh(scores / cap) (Gemma 2).
torch::Tensor scaled_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& mask, double scale, double softcap = 0.0);

}  // namespace peft
