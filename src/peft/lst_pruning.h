// Ladder Side-Tuning's initialisation (Sung et al. 2022, §2.2): the side network starts as the backbone pruned
// structurally by Fisher importance. Each backbone weight's importance is its squared gradient of the LM loss
// summed over training examples, taken one example at a time (the empirical Fisher information's diagonal).
// Importance is then summed per structural unit and the top units kept:
//   hidden dims    d' of d, one choice for the whole residual stream (every block reads and writes it);
//   head dims      d_h' of d_h per key/value head, the same for q, k, v and o of the query heads it serves, so
//                  each head keeps its q·k pairing; under rotary embeddings dims j and j + d_h/2 are kept
//                  together so the rotation still pairs them (the side's rotation frequencies are its own);
//   feed-forward   f' of f per layer, the same for the gate/up rows and the down columns.
// Side layer k starts from backbone layer layers[k]; the side's final norm from the backbone's.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace peft {

class CausalLM;
class BlockStack;

// Squared gradients summed over the first `count` examples (fewer if there are fewer), one tensor per backbone
// parameter named as in `model`, skipping names that start with `skip_prefix` (the side network's).
std::map<std::string, torch::Tensor> fisher_information(CausalLM& model, const std::vector<Example>& examples,
                                                        int64_t count, int64_t pad_id, const std::string& skip_prefix);

// Copies the pruned backbone into `side` (blocks from backbone layers `layers`, in order) and returns the kept
// hidden dims (d'), sorted.
torch::Tensor prune_into(BlockStack& side, CausalLM& model, const std::map<std::string, torch::Tensor>& fisher,
                         const std::vector<int64_t>& layers, int64_t reduction_factor);

}  // namespace peft
