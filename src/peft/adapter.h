// Bottleneck adapters (Houlsby et al. 2019; Pfeiffer et al. 2021; parallel adapters, He et al. 2022), in a
// format of our own (peft_type BOTTLENECK_ADAPTER; HF PEFT has no such method). Each insertion is
// A(z) = W_up·act(W_down·z + b_down) + b_up with W_down (r, d), W_up (d, r), all float32.
//  - serial (Houlsby; Pfeiffer = serial at the FFN only): h ← h + A(h), on the sub-layer output h before the
//    residual add, so the block computes x + h + A(h).
//  - parallel (He et al.): h ← h + s·A(x). This model is pre-norm, so x is the NORMALISED sub-layer input (the
//    very tensor the sub-layer F reads), not the raw residual stream: A then runs beside F on the same input,
//    which is He et al.'s "parallel to F" reading, and its input scale does not grow with depth.
// Init: houlsby (serial default) = weights N(0, 1e-2) truncated at ±2σ, zero biases (near-identity);
// lora (parallel default) = W_down kaiming-uniform(a=√5), W_up = 0, zero biases (exact identity).
// Adapters add a nonlinear module and cannot be merged into the base weights.
#pragma once

#include "config/section.h"
#include "peft/method.h"

namespace peft {

struct AdapterOptions : MethodOptions {
  std::string placement = "serial";  // serial | parallel
  std::string sites = "both";        // attn | ffn | both
  int64_t r = 64;                    // bottleneck width; 0 = derive from reduction_factor at attach
  int64_t reduction_factor = 0;      // r = d / reduction_factor when > 0 (exclusive with r)
  std::string activation = "relu";   // relu | gelu | silu | tanh
  double scaling = 4.0;              // parallel only
  std::string init;                  // houlsby | lora; empty = the placement's default
  bool train_norms = false;  // also train the blocks' norms (RMSNorm weights; LayerNorm weights and biases) (Houlsby)

  void read(Section& section) override;
  static std::shared_ptr<MethodOptions> from_adapter_config(const nlohmann::json& config);
  // init with the placement's default filled in.
  std::string resolved_init() const;
};

std::unique_ptr<Method> make_adapter(std::shared_ptr<const MethodOptions> options);

}  // namespace peft
