// Activation (gradient) checkpointing of transformer blocks: a block's forward keeps none of its activations,
// only its input; backward runs the block again, with the random generators as they were, and differentiates
// that. The block runs as one autograd node whose inputs are its input and the trainable parameters, so it works
// with a frozen base whose first block input needs no gradient (PyTorch's reentrant checkpoint fails there with
// "element 0 of tensors does not require grad").
#pragma once

#include <torch/torch.h>

#include <functional>
#include <vector>

namespace peft {

using BlockFunction = std::function<torch::Tensor(const torch::Tensor&)>;

// block(x) through a checkpoint. `block` must own what it captures (it runs again during backward, after the
// caller returned); `parameters` are every trainable tensor it may read (unused ones get no gradient).
torch::Tensor checkpointed(BlockFunction block, const torch::Tensor& x, const std::vector<torch::Tensor>& parameters);

// True while a block runs again for backward: what a method cached during the forward pass (prefix tuning's
// per-pass prefix table) must be computed afresh then, with autograd.
bool recomputing_block();

}  // namespace peft
