// The interface every PEFT method implements. A method is configured by typed options (read from the YAML
// `peft` section or from a saved adapter_config.json), attaches itself to a model's hook points, and knows how
// to save, load and merge its own tensors. The trainer and the CLI see only this interface.
#pragma once

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace peft {

class Section;
class Model;
class Tokenizer;
struct Example;

// Typed options of one method; defaults live in the derived struct's member initialisers.
struct MethodOptions {
  virtual ~MethodOptions() = default;
  // Reads the method's keys from the `peft` section (the registry has already read `method`).
  virtual void read(Section& section) = 0;
};

struct TrainableParameter {
  std::string name;  // the model path it lives at, e.g. model.layers.0.self_attn.q_proj.lora_A.weight
  torch::Tensor tensor;
  bool weight_decay = true;  // false for scale vectors and biases that decay must not pull to zero
};

class Method {
 public:
  virtual ~Method() = default;

  virtual std::string name() const = 0;

  // Called before attach() when a tokenizer is at hand (training): methods that initialise from text (prompt
  // tuning) tokenise here. Loading a saved adapter does not call it.
  virtual void prepare(const Tokenizer& tokenizer) {}

  // Called once after attach() with the training examples, before the first step (training only; loading an
  // adapter does not call it): methods that initialise from data (LST's Fisher pruning) do it here.
  virtual void initialise_from_data(Model& model, const std::vector<Example>& examples, int64_t pad_id) {}

  // Adds the method's parameters and hooks to `model`. Throws peft::Error when no site matches, listing
  // the sites that exist.
  virtual void attach(Model& model) = 0;

  // The sites changed by attach(), in model order (printed by --dry-run).
  virtual std::vector<std::string> targets() const = 0;

  // The parameters the optimiser trains.
  virtual std::vector<TrainableParameter> trainable_parameters() const = 0;

  // Adapter file contents keyed as HF PEFT keys them (float32, on CPU), and the inverse. Loading checks that
  // the key set and every shape match, naming the first mismatch. By default the file holds exactly the
  // trainable parameters, each keyed "base_model.model." + its name (PEFT's convention).
  virtual std::map<std::string, torch::Tensor> adapter_tensors() const;
  virtual void load_adapter_tensors(const std::map<std::string, torch::Tensor>& tensors);

  // adapter_config.json contents (PEFT's keys for methods PEFT has), built on common_adapter_config().
  virtual nlohmann::json adapter_config(const std::string& base_model_path) const = 0;

  // Folds the method into the base weights and removes its hooks; the model then computes the same
  // function without the method. Throws peft::Error for methods that cannot be merged.
  virtual void merge(Model& model) = 0;
  virtual bool mergeable() const { return true; }

  // True for full fine-tuning, whose result is a whole model directory rather than an adapter.
  virtual bool writes_model() const { return false; }

  // For the FLOP count (eval/flops.h): the weights of the matrices the method multiplies every token by, beside the
  // model's own linear layers (LoRA's A and B, a bottleneck's down and up projections, LST's side network). By
  // default its two-dimensional trainable parameters; methods whose matrices are not applied per token (prompt and
  // prefix tuning's embeddings) or that add none (full fine-tuning) say so.
  virtual int64_t per_token_weights() const;
  // False when training back-propagates through the method's own modules only (LST's side network), not the base.
  virtual bool backpropagates_through_base() const { return true; }

 protected:
  // The adapter_config.json keys that decide which tensors the file holds (named when a file disagrees).
  virtual std::string tensor_settings() const { return "the method's settings"; }
  // What every adapter_config.json holds the same way (PEFT's PeftConfig fields): the base, the type, inference
  // mode, task type CAUSAL_LM and no modules_to_save (peft/modules_to_save.h sets both when it wraps the
  // method), no revision or auto mapping.
  static nlohmann::json common_adapter_config(const std::string& base_model_path, const std::string& peft_type);
};

}  // namespace peft
