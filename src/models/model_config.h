// config.json of a Hugging Face model directory, parsed into the fields the model families use. Families name
// the same quantity differently (GPT-2's n_embd is Llama's hidden_size); ModelConfig holds it once. Which keys a
// family reads, implements or refuses is its own reader's business (models/registry.h; docs/MODEL_FAMILIES.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace peft {

// Rotary position embeddings: the dimensions rotated and how their frequencies are made, following
// transformers' rope types (modeling_rope_utils.py). Unused fields keep their defaults.
struct RopeSpec {
  std::string type = "default";  // default | linear | llama3 | yarn | longrope
  double theta = 10000.0;
  int64_t dim = 0;                                // dimensions rotated per head (head_dim × partial_rotary_factor)
  double factor = 1.0;                            // linear, llama3, yarn
  double low_freq_factor = 1.0;                   // llama3
  double high_freq_factor = 4.0;                  // llama3
  int64_t original_max_positions = 0;             // llama3, yarn, longrope: the pretraining context
  double attention_factor = 1.0;                  // yarn, longrope: cos and sin are scaled by it
  double beta_fast = 32.0, beta_slow = 1.0;       // yarn
  bool truncate = true;                           // yarn: correction range rounded outwards
  std::vector<double> short_factor, long_factor;  // longrope: per-frequency divisors (dim / 2 each)
};

struct ModelConfig {
  std::string architecture;  // architectures[0], e.g. "LlamaForCausalLM"
  std::string model_type;    // "llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3_text", "phi3", "gpt2", ...
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // defaults to num_attention_heads (no GQA)
  int64_t head_dim = 0;             // defaults to hidden_size / num_attention_heads
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;        // RMSNorm families (Llama)
  double layer_norm_eps = 1e-5;      // LayerNorm families (GPT-2's layer_norm_epsilon)
  std::string hidden_act = "silu";   // GPT-2's activation_function
  bool tie_word_embeddings = false;  // GPT-2 defaults to true
  bool attention_bias = false;       // bias on q, k, v (and o for Llama)
  bool output_bias = false;          // bias on o_proj (Llama's attention_bias; never for Qwen2)
  bool mlp_bias = false;
  int64_t bos_token_id = 1;
  int64_t eos_token_id = 2;
  std::string torch_dtype = "float32";
  // quantization_config: a bitsandbytes nf4 checkpoint (io/bitsandbytes.h); other quantizations are refused.
  bool bnb_nf4 = false;

  // Decoders with rotary positions (Llama, Gemma, Phi-3 families: models/decoder/).
  RopeSpec rope;            // every layer's, or the global (full-attention) layers' where they differ
  bool local_rope = false;  // sliding layers rotate with rope_local instead (Gemma 3)
  RopeSpec rope_local;
  int64_t sliding_window = 0;        // keys a sliding layer's query sees: itself and window - 1 before it
  std::vector<bool> sliding_layers;  // per layer: attends within sliding_window (empty: none does)
  bool qk_norm = false;              // RMSNorm of each query and key head before rotation (Qwen3, Gemma 3)
  double attention_scale = 0.0;      // softmax scale of q·k; 0 means head_dim^-½ (Gemma: query_pre_attn_scalar^-½)
  double attention_softcap = 0.0;    // scores → cap·tanh(scores / cap) before the mask (Gemma 2); 0: none
  double final_logit_softcap = 0.0;  // the same on the output logits (Gemma 2)

  // Encoders (BERT, RoBERTa)
  int64_t type_vocab_size = 2;
  int64_t pad_token_id = 0;  // RoBERTa numbers positions from pad_token_id + 1
  int64_t num_labels = 0;    // a classifier checkpoint's id2label / num_labels; 0 when config.json has none

  bool is_encoder() const { return model_type == "bert" || model_type == "roberta"; }
  bool is_sliding(int64_t layer) const {
    return layer < static_cast<int64_t>(sliding_layers.size()) && sliding_layers[static_cast<size_t>(layer)];
  }

  nlohmann::json raw;  // the whole file, for keys a family reads itself
};

// Reads DIR/config.json. Throws peft::Error naming the file for a missing file, invalid JSON, missing or
// mistyped keys, inconsistent sizes (e.g. heads not dividing hidden size), keys whose values change the
// computation in a way the family does not implement, and unsupported architectures (listing the supported ones).
ModelConfig load_model_config(const std::string& directory);

// The same for config.json's text; `file` names it in messages (a path, or "m.pt:extra/config.json").
ModelConfig parse_model_config(const std::string& text, const std::string& file);

}  // namespace peft
