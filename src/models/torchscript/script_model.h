// A TorchScript module of an architecture the tool does not know (case 2 of model.path: file.pt). Its linear
// layers become Projections, so that LoRA, (IA)³, BitFit and full fine-tuning attach to them as to a native
// model's: the forward graph is inlined, every aten::linear whose weight is a submodule's `weight` is rewritten
// into a call that runs that submodule's Projection (with the methods' hooks), and the rewritten graph runs on the
// module's own attributes, so autograd reaches the added parameters through the TorchScript graph. The module's
// code is left as it was: merging folds the adapter into its weight tensors and save() writes it as a new archive.
//
// The output contract (model.output) says what forward returns: `logits` ((B, T, V) next-token logits of a causal
// LM, or (B, C) class logits), or `loss` (a scalar the module computes from the labels it is given). Arguments are
// bound by name: input_ids (or whatever the first is called), attention_mask, token_type_ids and labels; other
// arguments must have defaults.
#pragma once

#include <torch/script.h>
#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "models/model.h"

namespace peft {

struct Batch;

class ScriptModel : public Model {
 public:
  enum class Output { token_logits, class_logits, loss };

  // `module` as torch::jit::load() read it from `path`; `declared_output` is model.output (logits | loss). Runs
  // forward once on a two-token probe to learn the output's kind and sizes. Throws peft::Error naming the file for
  // a forward signature or output that does not fit the contract, and for a module without linear layers.
  ScriptModel(torch::jit::Module module, std::string path, const std::string& declared_output,
              const torch::Device& device, torch::Dtype dtype);
  ~ScriptModel() override;

  std::string description() const override { return "the TorchScript module " + path_; }
  bool is_output_head(const std::string& module_path) const override { return module_path == head_path_; }
  std::vector<std::string> default_targets(DefaultTargets) const override { return {}; }
  bool can_add_biases() const override { return false; }

  Output output() const { return output_; }
  const std::string& path() const { return path_; }

  // The module's output for a batch: (B, T, V) logits, (B, C) logits or a scalar loss, as output() says.
  torch::Tensor forward(const Batch& batch);
  // The training loss: mean next-token cross-entropy over the scored tokens, cross-entropy of the classes, or
  // the module's own loss.
  torch::Tensor loss(const Batch& batch);
  // Per scored position (in scored_positions() order) negative log-likelihood, float32, for evaluation. A module
  // that returns its own loss is run one example at a time; each of its positions then holds the example's mean.
  torch::Tensor scored_nll(const Batch& batch);

  // Train/eval mode reaches the TorchScript module too (its dropout).
  void train(bool on = true) override;

  // Writes the module, with whatever is folded into its weights, as a TorchScript archive (atomically).
  void save(const std::string& path);

 private:
  enum class Role { input_ids, attention_mask, token_type_ids, labels, default_value };
  using LinearSites = std::map<std::string, std::vector<torch::jit::Node*>>;
  std::string bind_arguments(const c10::FunctionSchema& schema, const std::string& declared_output);
  std::map<std::string, Projection> adopt_parameters(const LinearSites& sites);
  void rewrite_linears(torch::jit::Graph& graph, const LinearSites& sites,
                       const std::map<std::string, Projection>& projections);
  void probe_output(const std::string& signature, const std::string& declared_output, const torch::Device& device);
  std::vector<torch::jit::IValue> arguments(const Batch& batch) const;

  torch::jit::Module module_;
  std::string path_;
  std::vector<Role> roles_;                         // one per forward argument after self
  std::vector<torch::jit::IValue> default_values_;  // for Role::default_value
  std::unique_ptr<torch::jit::GraphFunction> forward_;
  std::vector<int64_t> site_ids_;
  std::string head_path_;  // the linear layer that computes the output, if one does directly
  Output output_ = Output::token_logits;
};

}  // namespace peft
