#include "models/kv_cache.h"

#include <algorithm>
#include <limits>

#include "core/error.h"

namespace peft {

void KvCache::reserve(int64_t needed) {
  if (needed <= capacity_) return;
  int64_t grown = std::max(needed, 2 * capacity_);
  auto grow = [&](torch::Tensor& storage, int64_t dim) {
    if (!storage.defined()) return;
    auto sizes = storage.sizes().vec();
    sizes[static_cast<size_t>(dim)] = grown;
    auto larger = torch::full(sizes, dim == 1 ? -1 : 0, storage.options());
    larger.narrow(dim, 0, used_).copy_(storage.narrow(dim, 0, used_));
    storage = larger;
  };
  grow(positions_, 1);
  for (auto& k : keys_) grow(k, 2);
  for (auto& v : values_) grow(v, 2);
  capacity_ = grown;
}

torch::Tensor KvCache::begin_step(const torch::Tensor& attention_mask, int64_t prefix_length) {
  int64_t batch = attention_mask.size(0), length = attention_mask.size(1);
  auto options = torch::dtype(torch::kLong).device(attention_mask.device());
  torch::Tensor queries;
  if (empty()) {
    check(step_length_ == 0, "kv cache: a step began before the last one ended");
    queries = torch::arange(prefix_length, prefix_length + length, options).expand({batch, length});
    max_position_ = prefix_length + length - 1;
  } else {
    queries = next_ + torch::arange(length, options);
    max_position_ += length;  // an upper bound: rows with fewer positions stay below it
  }
  auto slots = queries.masked_fill(attention_mask == 0, -1);
  if (empty() && prefix_length > 0) {
    slots = torch::cat({torch::arange(prefix_length, options).expand({batch, prefix_length}), slots}, 1);
  }
  write_positions(slots);
  return queries;
}

void KvCache::write_positions(const torch::Tensor& positions) {
  int64_t length = positions.size(1);
  if (!positions_.defined()) {
    capacity_ = std::max(capacity_, length);
    positions_ = torch::full({positions.size(0), capacity_}, -1, positions.options());
    next_ = torch::zeros({positions.size(0), 1}, positions.options());
  }
  check(positions.size(0) == positions_.size(0), "kv cache: a step's batch differs from the cache's");
  reserve(used_ + length);
  positions_.narrow(1, used_, length).copy_(positions);
  next_ = torch::maximum(next_, std::get<0>(positions.max(1, /*keepdim=*/true)) + 1);
  step_length_ = length;
}

std::pair<torch::Tensor, torch::Tensor> KvCache::append(int64_t layer, const torch::Tensor& k, const torch::Tensor& v) {
  auto index = static_cast<size_t>(layer);
  if (keys_.size() <= index) keys_.resize(index + 1), values_.resize(index + 1);
  auto store = [&](torch::Tensor& storage, const torch::Tensor& step) {
    if (!storage.defined()) {
      check(used_ == 0, "kv cache: layer " + std::to_string(layer) + " was skipped by an earlier step");
      storage = torch::empty({step.size(0), step.size(1), capacity_, step.size(3)}, step.options());
    }
    storage.narrow(2, used_, step_length_).copy_(step);
    return storage.narrow(2, 0, used_ + step_length_);
  };
  auto keys = store(keys_[index], k);
  return {keys, store(values_[index], v)};
}

void KvCache::end_step() {
  used_ += step_length_;
  step_length_ = 0;
}

torch::Tensor KvCache::mask(const torch::Tensor& query_positions, int64_t window) const {
  auto keys = positions_.narrow(1, 0, used_ + step_length_).unsqueeze(1).unsqueeze(1);  // (B, 1, 1, S)
  auto queries = query_positions.unsqueeze(1).unsqueeze(-1);                            // (B, 1, T, 1)
  auto visible = (keys >= 0).logical_and(keys <= queries);  // (B, 1, T, S)
  if (window > 0) visible.logical_and_(queries - keys < window);
  auto options = torch::dtype(torch::kFloat).device(query_positions.device());
  return torch::where(visible, torch::zeros({}, options),
                      torch::full({}, std::numeric_limits<float>::lowest(), options));
}

void KvCache::keep_rows(const torch::Tensor& rows) {
  auto select = [&](torch::Tensor& t) {
    if (t.defined()) t = t.index_select(0, rows);
  };
  select(positions_);
  select(next_);
  for (auto& k : keys_) select(k);
  for (auto& v : values_) select(v);
  max_position_ = rows.numel() > 0 ? next_.max().item<int64_t>() - 1 : -1;
}

}  // namespace peft
