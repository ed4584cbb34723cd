// Sequence packing (data.packing): several training examples share one row of up to max_length tokens, so that
// batches carry no padding. Each example stays whole and sees only itself: collate() numbers a row's examples in
// its attention mask, which the models turn into a block-diagonal causal mask and positions that restart at 0
// per example (models/layers.h). The label of each example's first token is ignored, as it is unpacked (no
// example predicts another's first token), so every example's loss is what it is alone.
#pragma once

#include <cstdint>
#include <vector>

#include "data/dataset.h"

namespace peft {

struct PackedExamples {
  std::vector<Example> rows;
  std::vector<std::vector<size_t>> members;  // the indices of the examples in each row, in row order
};

// Best-fit decreasing by length (ties in file order): deterministic, and rows come out nearly full. Examples
// must be language-modelling ones (no class, no token types) of at most max_length tokens.
PackedExamples pack_examples(const std::vector<Example>& examples, int64_t max_length);

}  // namespace peft
