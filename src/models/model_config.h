// config.json of a Hugging Face model directory, parsed into the fields the model families use. Families name
// the same quantity differently (GPT-2's n_embd is Llama's hidden_size); ModelConfig holds it once.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace peft {

struct ModelConfig {
  std::string architecture;  // architectures[0], e.g. "LlamaForCausalLM"
  std::string model_type;    // "llama", "mistral", "qwen2", "gpt2", "bert", "roberta"
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // defaults to num_attention_heads (no GQA)
  int64_t head_dim = 0;             // defaults to hidden_size / num_attention_heads
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;    // RMSNorm families (Llama)
  double layer_norm_eps = 1e-5;  // LayerNorm families (GPT-2's layer_norm_epsilon)
  double rope_theta = 10000.0;
  std::string hidden_act = "silu";   // GPT-2's activation_function
  bool tie_word_embeddings = false;  // GPT-2 defaults to true
  bool attention_bias = false;       // bias on q, k, v (and o for Llama)
  bool output_bias = false;          // bias on o_proj (Llama's attention_bias; never for Qwen2)
  bool mlp_bias = false;
  int64_t bos_token_id = 1;
  int64_t eos_token_id = 2;
  std::string torch_dtype = "float32";
  // Encoders (BERT, RoBERTa)
  int64_t type_vocab_size = 2;
  int64_t pad_token_id = 0;  // RoBERTa numbers positions from pad_token_id + 1
  int64_t num_labels = 0;    // a classifier checkpoint's id2label / num_labels; 0 when config.json has none

  bool is_encoder() const { return model_type == "bert" || model_type == "roberta"; }

  nlohmann::json raw;  // the whole file, for keys a family reads itself
};

// Reads DIR/config.json. Throws peft::Error naming the file for a missing file, invalid JSON, missing or
// mistyped keys, inconsistent sizes (e.g. heads not dividing hidden size), and unsupported architectures
// (listing the supported ones).
ModelConfig load_model_config(const std::string& directory);

// The same for config.json's text; `file` names it in messages (a path, or "m.pt:extra/config.json").
ModelConfig parse_model_config(const std::string& text, const std::string& file);

}  // namespace peft
