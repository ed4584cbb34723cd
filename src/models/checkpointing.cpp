#include "models/checkpointing.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/Generator.h>
#include <torch/csrc/autograd/custom_function.h>

namespace peft {
namespace {

thread_local bool recomputing = false;

// What backward needs besides the saved tensors: the block itself and the generator states it started from.
struct SavedBlock : torch::CustomClassHolder {
  BlockFunction block;
  torch::Tensor cpu_generator_state, device_generator_state;
};

// Sets the generators to the forward pass's states for the recomputation, and back afterwards, so that dropout
// masks repeat and the training run's random stream goes on as without checkpointing.
class ReplayedGenerators {
 public:
  ReplayedGenerators(const SavedBlock& saved, const torch::Device& device) : device_(device) {
    at::Generator cpu = at::detail::getDefaultCPUGenerator();
    cpu_state_ = cpu.get_state();
    cpu.set_state(saved.cpu_generator_state);
    if (saved.device_generator_state.defined()) {
      at::Generator generator = at::globalContext().defaultGenerator(device_);
      device_state_ = generator.get_state();
      generator.set_state(saved.device_generator_state);
    }
    recomputing = true;
  }
  ~ReplayedGenerators() {
    recomputing = false;
    at::Generator cpu = at::detail::getDefaultCPUGenerator();
    cpu.set_state(cpu_state_);
    if (device_state_.defined()) {
      at::Generator generator = at::globalContext().defaultGenerator(device_);
      generator.set_state(device_state_);
    }
  }

 private:
  torch::Device device_;
  torch::Tensor cpu_state_, device_state_;
};

class Checkpoint : public torch::autograd::Function<Checkpoint> {
 public:
  // Runs without autograd (Function::apply's forward does).
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* context, torch::Tensor x,
                                                at::TensorList parameters, c10::intrusive_ptr<SavedBlock> saved) {
    saved->cpu_generator_state = at::detail::getDefaultCPUGenerator().get_state();
    if (x.is_cuda()) saved->device_generator_state = at::globalContext().defaultGenerator(x.device()).get_state();
    torch::autograd::variable_list kept{x};
    kept.insert(kept.end(), parameters.begin(), parameters.end());
    context->save_for_backward(kept);
    context->saved_data["block"] = c10::IValue::make_capsule(saved);
    return {saved->block(x)};
  }

  // One gradient per forward input: x, each parameter, and none for the block.
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* context,
                                                 torch::autograd::variable_list output_gradients) {
    auto saved = c10::static_intrusive_pointer_cast<SavedBlock>(context->saved_data["block"].toCapsule());
    auto kept = context->get_saved_variables();
    bool input_needs_gradient = kept[0].requires_grad();
    auto x = kept[0].detach().requires_grad_(input_needs_gradient);
    torch::Tensor y;
    {
      ReplayedGenerators replay(*saved, x.device());
      torch::AutoGradMode enabled(true);
      y = saved->block(x);
    }
    std::vector<torch::Tensor> wrt;
    std::vector<size_t> slot;  // which gradient of the result each of `wrt` is
    if (input_needs_gradient) wrt.push_back(x), slot.push_back(0);
    for (size_t i = 1; i < kept.size(); ++i) {
      if (kept[i].requires_grad()) wrt.push_back(kept[i]), slot.push_back(i);
    }
    torch::autograd::variable_list gradients(kept.size() + 1);
    if (wrt.empty()) return gradients;
    auto computed = torch::autograd::grad({y}, wrt, {output_gradients[0]}, /*retain_graph=*/false,
                                          /*create_graph=*/false, /*allow_unused=*/true);
    for (size_t i = 0; i < wrt.size(); ++i) gradients[slot[i]] = computed[i];
    return gradients;
  }
};

}  // namespace

torch::Tensor checkpointed(BlockFunction block, const torch::Tensor& x, const std::vector<torch::Tensor>& parameters) {
  auto saved = c10::make_intrusive<SavedBlock>();
  saved->block = std::move(block);
  // A TensorList, not a vector: Function::apply makes only tensors and tensor lists inputs of the node.
  return Checkpoint::apply(x, at::TensorList(parameters), saved)[0];
}

bool recomputing_block() { return recomputing; }

}  // namespace peft
