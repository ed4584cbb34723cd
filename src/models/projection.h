// Hook point 1: every linear layer of a model is a Projection, y = x·Wᵀ + b, with an ordered list of hooks.
// LoRA adds s·B·A·x to the output, (IA)³ rescales the input or output, a serial adapter transforms the output,
// BitFit adds or unfreezes the bias. Methods register their parameters on the Projection module itself under
// PEFT's names (lora_A, ia3_l, ...), so that named_parameters() yields PEFT's keys.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <vector>

#include "models/quantized_weight.h"

namespace peft {

class ProjectionImpl;

class ProjectionHook {
 public:
  virtual ~ProjectionHook() = default;
  // Applied to the input before the base product, in hook order (e.g. (IA)³ on feed-forward inputs).
  virtual torch::Tensor on_input(const torch::Tensor& x) { return x; }
  // Applied to the output in hook order; `x` is the input after on_input. `layer` is the projection the hook runs
  // in (DoRA reads its base weight), passed per call so that hooks hold no reference to their layer.
  virtual torch::Tensor on_output(const ProjectionImpl& layer, const torch::Tensor& x, const torch::Tensor& y) {
    return y;
  }
  // Folds the hook into weight (out, in) and bias (out, may be undefined) in place.
  virtual void merge_into(torch::Tensor& weight, torch::Tensor& bias) = 0;
  // True for hooks that change only the input (on_input). Every output hook sees the changed input x', so the
  // merged weight is (output hooks folded into W)·(input change): input hooks fold last.
  virtual bool changes_input() const { return false; }
};

class ProjectionImpl : public torch::nn::Module {
 public:
  ProjectionImpl(int64_t in_features, int64_t out_features, bool with_bias,
                 const torch::TensorOptions& options = torch::TensorOptions());
  // Shares existing tensors (a TorchScript module's linear layer) as its frozen weight and bias (may be undefined).
  ProjectionImpl(torch::Tensor weight, torch::Tensor bias);

  torch::Tensor forward(const torch::Tensor& x);

  void add_hook(std::shared_ptr<ProjectionHook> hook) { hooks_.push_back(std::move(hook)); }
  const std::vector<std::shared_ptr<ProjectionHook>>& hooks() const { return hooks_; }
  // Folds every hook into the weights (which must then be writable) and drops the hooks. A quantized weight is
  // dequantized first.
  void merge_hooks();

  // model.quantize: the weight is kept as `quantized` and dequantized for each product (in backward again); the
  // dense `weight` becomes an empty tensor of the compute dtype and is no longer a parameter.
  void set_quantized(std::shared_ptr<const QuantizedWeight> quantized);
  // Back to a dense weight parameter of the compute dtype (peft-merge, a method's initialisation that rewrites it).
  void dequantize();
  const std::shared_ptr<const QuantizedWeight>& quantized() const { return quantized_; }
  // The weight (out, in) in the compute dtype: `weight` itself, or a dequantized copy. Read-only use.
  torch::Tensor dense_weight() const;

  int64_t in_features;
  int64_t out_features;
  torch::Tensor weight;  // (out, in); empty while quantized
  torch::Tensor bias;    // (out) or undefined

 private:
  std::vector<std::shared_ptr<ProjectionHook>> hooks_;
  std::shared_ptr<const QuantizedWeight> quantized_;
};
TORCH_MODULE(Projection);

// Every quantized projection of `module` dense for this object's lifetime, then the same quantized weights again:
// for a pass that reads or differentiates the base's weights (LST's pruning), at an unquantized base's memory.
class DenseWeights {
 public:
  explicit DenseWeights(torch::nn::Module& module);
  ~DenseWeights();
  DenseWeights(const DenseWeights&) = delete;
  DenseWeights& operator=(const DenseWeights&) = delete;

 private:
  std::vector<std::pair<Projection, std::shared_ptr<const QuantizedWeight>>> restore_;
};

}  // namespace peft
