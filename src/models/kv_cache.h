// The keys and values of the positions a causal LM has already seen, kept between generation steps so that
// each new token costs one position instead of the whole sequence. A prefill writes the prompts' (with an
// attention prefix's keys and an input prefix's virtual tokens, once), then every step appends the new tokens'.
#pragma once

#include <torch/torch.h>

#include <utility>
#include <vector>

namespace peft {

class KvCache {
 public:
  // Room for `capacity` slots per row to begin with; it grows when a step needs more.
  explicit KvCache(int64_t capacity = 64) : capacity_(capacity) {}

  bool empty() const { return used_ == 0; }
  // Slots written so far (the same count in every row; padding takes slots that are never attended).
  int64_t length() const { return used_; }
  // The largest position any row holds, or -1 when empty: how far the rotary tables must reach.
  int64_t max_position() const { return max_position_; }

  // Starts a step of T tokens under attention_mask (B, T) (1 = token, 0 = padding) and returns their positions
  // (B, T). A prefill (empty cache) numbers them from `prefix_length` on and first writes the slots of that many
  // attention-prefix keys (positions 0..P-1, visible to every query); a later step continues each row's positions.
  // The step's layers then call append() once each, and end_step() closes it.
  torch::Tensor begin_step(const torch::Tensor& attention_mask, int64_t prefix_length);
  // Writes layer `layer`'s keys and values of the step, k and v (B, n, T, d_h), after the slots already used,
  // and returns all of them (B, n, S, d_h), the step's included.
  std::pair<torch::Tensor, torch::Tensor> append(int64_t layer, const torch::Tensor& k, const torch::Tensor& v);
  // Closes the step begun last: its slots count as used from now on.
  void end_step();

  // Additive float32 mask (B, 1, T, S) of queries at `query_positions` (B, T) over every slot the current step
  // sees: a key is visible when it holds a position no later than the query's (and, with `window` > 0, less than
  // `window` before it), 0 there and the lowest float elsewhere, as attention_mask_bias() gives.
  torch::Tensor mask(const torch::Tensor& query_positions, int64_t window) const;

  // The position each row's next token takes (B, 1): one past the largest it holds.
  const torch::Tensor& next_positions() const { return next_; }

  // Keeps the rows `rows` (long, on the cache's device) in that order: finished sequences leave the batch.
  void keep_rows(const torch::Tensor& rows);

 private:
  // Writes the slots' positions (B, T') and makes them the current step's.
  void write_positions(const torch::Tensor& positions);
  // Makes room for `needed` slots in `storage` (B, n, capacity, d_h) or `positions_`, doubling as it grows.
  void reserve(int64_t needed);

  int64_t capacity_;
  int64_t used_ = 0, step_length_ = 0, max_position_ = -1;
  std::vector<torch::Tensor> keys_, values_;  // per layer, (B, n, capacity, d_h); undefined until written
  torch::Tensor positions_;                   // (B, capacity) long, -1 where nothing is attended
  torch::Tensor next_;                        // (B, 1) long
};

}  // namespace peft
