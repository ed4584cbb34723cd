// The GPT-2 family: GPT2LMHeadModel (pre-norm decoder, LayerNorm, learned absolute positions, fused q/k/v
// projection c_attn, gelu_new MLP, head tied to the token embeddings). Submodules are registered under Hugging
// Face's module names (gpt2/names.h), so parameter and adapter keys are the checkpoint's. Weights are held
// (out, in) like every Projection; the checkpoint's Conv1D layout [in, out] is the loader's business.
#pragma once

#include <torch/torch.h>

#include "models/causal_lm.h"
#include "models/kv_cache.h"
#include "models/layers.h"

namespace peft {

class Gpt2AttentionImpl : public torch::nn::Module {
 public:
  Gpt2AttentionImpl(const ModelConfig& config, const torch::TensorOptions& options);
  // x (B, T, d); mask (B or 1, 1, T, P + T) additive float32 over prefix + sequence keys (with a KV cache, over
  // every slot it holds, the step's keys and values appended to it).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask, AttentionPrefix* prefix, int64_t layer,
                        KvCache* cache = nullptr);
  Projection c_attn{nullptr}, c_proj{nullptr};
  int64_t num_heads, head_dim;
  bool inverse_layer_scaling;  // scale_attn_by_inverse_layer_idx: scores also divided by layer + 1
};
TORCH_MODULE(Gpt2Attention);

class Gpt2MlpImpl : public torch::nn::Module {
 public:
  Gpt2MlpImpl(const ModelConfig& config, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x);  // c_proj(act(c_fc(x)))
  Projection c_fc{nullptr}, c_proj{nullptr};
  std::string activation;
};
TORCH_MODULE(Gpt2Mlp);

class Gpt2BlockImpl : public torch::nn::Module {
 public:
  Gpt2BlockImpl(const ModelConfig& config, const torch::TensorOptions& options);
  // x + attn(ln_1(x)), then + mlp(ln_2(x)); `hooks` (may be null) are called at their sites as layer `index`.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask, ModelHooks* hooks, int64_t index,
                        KvCache* cache = nullptr);
  LayerNorm ln_1{nullptr}, ln_2{nullptr};
  Gpt2Attention attn{nullptr};
  Gpt2Mlp mlp{nullptr};
};
TORCH_MODULE(Gpt2Block);

// "transformer" in HF's naming: token and position embeddings, the blocks and the final norm.
class Gpt2ModelImpl : public torch::nn::Module {
 public:
  Gpt2ModelImpl(const ModelConfig& config, const torch::TensorOptions& options);
  TokenEmbedding wte{nullptr}, wpe{nullptr};
  std::vector<Gpt2Block> h;
  LayerNorm ln_f{nullptr};
};
TORCH_MODULE(Gpt2Model);

// Blocks and a final norm without embeddings: the side network of Ladder Side-Tuning.
class Gpt2StackImpl : public BlockStack {
 public:
  Gpt2StackImpl(const ModelConfig& config, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& attention_mask,
                        const BlockInput& before_block) override;
  std::vector<Gpt2Block> h;
  LayerNorm ln_f{nullptr};
};

class Gpt2LMHeadModel : public CausalLM {
 public:
  // Parameters are allocated uninitialised with `options` (dtype, device); load_model() fills them.
  Gpt2LMHeadModel(const ModelConfig& config, const torch::TensorOptions& options);

  torch::Tensor hidden_states(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) override;
  bool supports_kv_cache() const override { return !hooks.stack; }
  torch::Tensor decode(const torch::Tensor& input_ids, const torch::Tensor& attention_mask, KvCache& cache) override;
  Projection head() override { return lm_head; }
  void untie_head() override { lm_head = register_untied_head(lm_head); }
  torch::Tensor input_embeddings() override { return transformer->wte->weight; }
  bool is_output_head(const std::string& module_path) const override { return module_path == "lm_head"; }
  BackboneStates backbone_states(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                 const std::vector<int64_t>& blocks) override;
  std::shared_ptr<BlockStack> make_block_stack(const ModelConfig& config,
                                               const torch::TensorOptions& options) const override;
  StackLayout stack_layout() const override;
  bool stored_transposed(const std::string& tensor_name) const override;
  std::string optional_name_prefix() const override;
  bool expected_unused(const std::string& tensor_name) const override;
  std::string block_path(int64_t index) const override { return "transformer.h." + std::to_string(index); }
  std::vector<std::string> block_norms() const override {
    return {"ln_1.weight", "ln_1.bias", "ln_2.weight", "ln_2.bias"};
  }

  Gpt2Model transformer{nullptr};
  Projection lm_head{nullptr};  // registered only when untied; shares the token embeddings when tied

 private:
  // Adds the position embeddings of positions first..first+T-1 to `embeddings` (B, T, d).
  torch::Tensor add_positions(const torch::Tensor& embeddings, int64_t first);
};

}  // namespace peft
