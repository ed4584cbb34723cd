// The BERT family as sequence classifiers: BertForSequenceClassification and RobertaForSequenceClassification
// (post-LN encoder blocks, learned absolute positions, token-type embeddings, exact gelu). BERT classifies the
// pooled first token (pooler: dense + tanh) with one Linear; RoBERTa numbers positions from padding_idx + 1 over
// the non-pad tokens and classifies the first token with dense + tanh + out_proj. Submodules carry Hugging
// Face's module names (bert/names.h).
#pragma once

#include <torch/torch.h>

#include "models/layers.h"
#include "models/sequence_classifier.h"

namespace peft {

class BertEmbeddingsImpl : public torch::nn::Module {
 public:
  BertEmbeddingsImpl(const ModelConfig& config, const torch::TensorOptions& options);
  TokenEmbedding word_embeddings{nullptr}, position_embeddings{nullptr}, token_type_embeddings{nullptr};
  LayerNorm norm{nullptr};  // "LayerNorm"
};
TORCH_MODULE(BertEmbeddings);

class BertSelfAttentionImpl : public torch::nn::Module {
 public:
  BertSelfAttentionImpl(const ModelConfig& config, const torch::TensorOptions& options);
  Projection query{nullptr}, key{nullptr}, value{nullptr};
};
TORCH_MODULE(BertSelfAttention);

// A sub-layer's output projection and the LayerNorm of (projection + residual): attention.output and output.
class BertSublayerOutputImpl : public torch::nn::Module {
 public:
  BertSublayerOutputImpl(int64_t in, const ModelConfig& config, const torch::TensorOptions& options);
  Projection dense{nullptr};
  LayerNorm norm{nullptr};  // "LayerNorm"
};
TORCH_MODULE(BertSublayerOutput);

class BertAttentionImpl : public torch::nn::Module {
 public:
  BertAttentionImpl(const ModelConfig& config, const torch::TensorOptions& options);
  BertSelfAttention self_attention{nullptr};  // "self"
  BertSublayerOutput output{nullptr};
};
TORCH_MODULE(BertAttention);

class BertIntermediateImpl : public torch::nn::Module {
 public:
  BertIntermediateImpl(const ModelConfig& config, const torch::TensorOptions& options);
  Projection dense{nullptr};
};
TORCH_MODULE(BertIntermediate);

class BertLayerImpl : public torch::nn::Module {
 public:
  BertLayerImpl(const ModelConfig& config, const torch::TensorOptions& options);
  // LayerNorm(x + attention(x)), then LayerNorm(y + ffn(y)); hooks (may be null) at their sites as layer `index`.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask, ModelHooks* hooks, int64_t index);
  BertAttention attention{nullptr};
  BertIntermediate intermediate{nullptr};
  BertSublayerOutput output{nullptr};
  int64_t num_heads, head_dim;
};
TORCH_MODULE(BertLayer);

// A module holding one Projection named `dense` (BERT's pooler) or `dense` and `out_proj` (RoBERTa's head).
class DenseHeadImpl : public torch::nn::Module {
 public:
  DenseHeadImpl(int64_t hidden, int64_t outputs, const torch::TensorOptions& options);
  Projection dense{nullptr}, out_proj{nullptr};  // out_proj only when outputs > 0
};
TORCH_MODULE(DenseHead);

// "bert" / "roberta" in HF's naming: embeddings, encoder.layer.N and (BERT) pooler.dense.
class BertModelImpl : public torch::nn::Module {
 public:
  BertModelImpl(const ModelConfig& config, const torch::TensorOptions& options);
  BertEmbeddings embeddings{nullptr};
  std::vector<BertLayer> layers;
  DenseHead pooler{nullptr};  // BERT only
};
TORCH_MODULE(BertModel);

class BertForSequenceClassification : public SequenceClassifier {
 public:
  // The encoder is allocated uninitialised for the loader; the head is initialised as HF does (normal(0,
  // initializer_range), zero bias) for checkpoints that have none, and load_model() overwrites it otherwise.
  BertForSequenceClassification(const ModelConfig& config, int64_t num_labels, const torch::TensorOptions& options);

  torch::Tensor classify(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                         const torch::Tensor& token_type_ids) override;
  torch::Tensor input_embeddings() override { return encoder->embeddings->word_embeddings->weight; }
  bool is_output_head(const std::string& module_path) const override;
  std::string optional_name_prefix() const override;
  bool expected_unused(const std::string& tensor_name) const override;
  bool may_be_absent(const std::string& tensor_name) const override;
  std::string head_module() const override { return "classifier"; }
  std::string block_path(int64_t index) const override { return base_ + "encoder.layer." + std::to_string(index); }
  std::vector<std::string> block_norms() const override {
    return {"attention.output.LayerNorm.weight", "attention.output.LayerNorm.bias", "output.LayerNorm.weight",
            "output.LayerNorm.bias"};
  }

  BertModel encoder{nullptr};       // "bert" or "roberta"
  Projection classifier{nullptr};   // BERT: "classifier"
  DenseHead roberta_head{nullptr};  // RoBERTa: "classifier" (dense, out_proj)

 private:
  bool roberta_;
  std::string base_;  // "bert." or "roberta."
};

}  // namespace peft
