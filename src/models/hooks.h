// Hook points 2-4 of a transformer (see STYLE.md "Hook points"): the unified view of He et al. as code. A model
// calls these at fixed sites; methods that touch the sequence or the block stack implement them.
// (Hook point 1, per-linear hooks, lives in models/projection.h.)
#pragma once

#include <torch/torch.h>

#include <memory>
#include <utility>
#include <vector>

namespace peft {

class CausalLM;

// 2. Per-layer key/value prefixes (prefix tuning, MAM): keys and values (B, n_kv, l, d_h), prepended after RoPE,
// never rotated, visible to every query. A forward pass asks for layers 0, 1, ... L-1 in order, so an
// implementation may compute all layers' prefixes at layer 0 and reuse them for the rest of the pass.
class AttentionPrefix {
 public:
  virtual ~AttentionPrefix() = default;
  virtual int64_t length() const = 0;
  virtual std::pair<torch::Tensor, torch::Tensor> prefix(int64_t layer, int64_t batch_size) = 0;
};

// 3. Virtual tokens prepended to the input embeddings (prompt tuning, SPoT): (B, l, d). The model extends the
// attention mask with ones, shifts real tokens' positions by l and drops the l positions from its output.
class InputPrefix {
 public:
  virtual ~InputPrefix() = default;
  virtual int64_t length() const = 0;
  virtual torch::Tensor prefix(int64_t batch_size) = 0;
};

// 4. Sub-layer taps (Houlsby, Pfeiffer, parallel adapters): called with the sub-layer's normalised input, the
// residual stream entering the block and the sub-layer's output h before the residual add; returns the new h.
enum class Sublayer { attention, feed_forward };
class SublayerHook {
 public:
  virtual ~SublayerHook() = default;
  virtual torch::Tensor apply(int64_t layer, Sublayer sublayer, const torch::Tensor& normed_input,
                              const torch::Tensor& residual, const torch::Tensor& output) = 0;
};

// 4'. The block stack replaced (Ladder Side-Tuning): when set, the model's hidden_states() returns
// stack->hidden_states(model, ...), which reads the frozen backbone through CausalLM::backbone_states() and runs
// its own network beside it.
class StackHook {
 public:
  virtual ~StackHook() = default;
  virtual torch::Tensor hidden_states(CausalLM& model, const torch::Tensor& input_ids,
                                      const torch::Tensor& attention_mask) = 0;
};

struct ModelHooks {
  std::shared_ptr<InputPrefix> input_prefix;
  std::shared_ptr<AttentionPrefix> attention_prefix;
  std::vector<std::shared_ptr<SublayerHook>> sublayer;
  std::shared_ptr<StackHook> stack;
};

// A block's call site for hook point 4: every sub-layer tap, in order, on the sub-layer's output h (`hooks` may
// be null: a block run outside the model, as in LST's side network).
inline torch::Tensor tap_sublayer(ModelHooks* hooks, int64_t layer, Sublayer sublayer,
                                  const torch::Tensor& normed_input, const torch::Tensor& residual, torch::Tensor h) {
  if (hooks) {
    for (auto& hook : hooks->sublayer) h = hook->apply(layer, sublayer, normed_input, residual, h);
  }
  return h;
}

}  // namespace peft
