// The Llama family: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM (pre-norm decoder,
// RMSNorm, rotary embeddings, grouped-query attention, SwiGLU MLP; Qwen3 normalises each query and key head before
// the rotation). Submodules are registered under Hugging Face's module names, so parameter names are the
// checkpoint's tensor names (llama/names.h lists them); models/decoder/ has what the block shares with the other
// rotary families.
#pragma once

#include <torch/torch.h>

#include "models/decoder/decoder.h"

namespace peft {

class LlamaDecoderLayer : public DecoderLayer {
 public:
  LlamaDecoderLayer(const ModelConfig& config, const torch::TensorOptions& options);
  // x + attention(norm(x)), then + mlp(norm(x)).
  torch::Tensor forward(const torch::Tensor& x, const DecoderPass& pass, ModelHooks* hooks, int64_t index) override;
  RmsNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  DecoderAttention self_attn{nullptr};  // Qwen3: with q_norm / k_norm over head_dim, before the rotation
  GatedMlp mlp{nullptr};                // down(silu(gate(x)) * up(x))
};

// Blocks and a final norm without embeddings: the side network of Ladder Side-Tuning.
class LlamaStackImpl : public BlockStack {
 public:
  LlamaStackImpl(const ModelConfig& config, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& attention_mask,
                        const BlockInput& before_block) override;
  std::vector<std::shared_ptr<LlamaDecoderLayer>> layers;
  RmsNorm norm{nullptr};

 private:
  DecoderPositions positions_;
};

class LlamaForCausalLM : public DecoderForCausalLM {
 public:
  LlamaForCausalLM(const ModelConfig& config, const torch::TensorOptions& options);

  BackboneStates backbone_states(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                 const std::vector<int64_t>& blocks) override {
    return run_backbone(input_ids, attention_mask, blocks);
  }
  std::shared_ptr<BlockStack> make_block_stack(const ModelConfig& config,
                                               const torch::TensorOptions& options) const override;
  StackLayout stack_layout() const override;
  std::vector<std::string> block_norms() const override {
    return {"input_layernorm.weight", "post_attention_layernorm.weight"};
  }
};

}  // namespace peft
