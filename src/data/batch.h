// Collation into padded tensors and the seeded, shuffling batch order.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <random>
#include <vector>

#include "data/dataset.h"

namespace peft {

struct Batch {
  torch::Tensor input_ids;       // (B, T) int64, right-padded with the pad id
  torch::Tensor attention_mask;  // (B, T) int64, 1 = real token (packed rows: 1, 2, ... per example, 0 = padding)
  torch::Tensor labels;          // (B, T) int64, -100 on padding and unscored tokens
  torch::Tensor token_type_ids;  // (B, T) int64, 0 on padding (encoders)
  torch::Tensor class_labels;    // (B) int64: the class of each example (sequence classification), else -1
  int64_t tokens = 0;            // real tokens in the batch
  int64_t scored_tokens = 0;     // labels that take loss after the shift (labels[:, 1:] != -100)

  Batch to(const torch::Device& device) const;
};

// Pads to the longest example in the batch.
Batch collate(const std::vector<const Example*>& examples, int64_t pad_id);

// Epoch-based order over examples: shuffled with a generator seeded by (seed, epoch), so that a run is
// repeatable and an epoch's order can be recomputed from its number alone. The last batch may be short.
class BatchSampler {
 public:
  BatchSampler(size_t num_examples, int64_t batch_size, bool shuffle, uint64_t seed);
  size_t batches_per_epoch() const;
  // Example indices of batch `index` of `epoch`.
  std::vector<size_t> batch(int64_t epoch, size_t index) const;
  // Every example index of `epoch`, in the order its batches take them (a checkpoint records it).
  const std::vector<size_t>& order(int64_t epoch) const;

 private:
  size_t num_examples_;
  int64_t batch_size_;
  bool shuffle_;
  uint64_t seed_;
  // The last epoch's order, so that batch() costs O(batch_size). Not thread-safe.
  mutable int64_t cached_epoch_ = 0;
  mutable bool cached_ = false;
  mutable std::vector<size_t> cached_order_;
};

}  // namespace peft
