#include "data/batch.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"

namespace peft {

Batch Batch::to(const torch::Device& device) const {
  Batch moved = *this;
  moved.input_ids = input_ids.to(device);
  moved.attention_mask = attention_mask.to(device);
  moved.labels = labels.to(device);
  moved.token_type_ids = token_type_ids.to(device);
  moved.class_labels = class_labels.to(device);
  return moved;
}

Batch collate(const std::vector<const Example*>& examples, int64_t pad_id) {
  check(!examples.empty(), "cannot collate an empty batch");
  size_t length = 0;
  for (const Example* example : examples) {
    check(example != nullptr, "cannot collate a null example");
    check(example->input_ids.size() == example->labels.size(),
          "cannot collate an example whose labels (" + std::to_string(example->labels.size()) + ") and input ids (" +
              std::to_string(example->input_ids.size()) + ") differ in length");
    length = std::max(length, example->input_ids.size());
  }

  const int64_t rows = static_cast<int64_t>(examples.size());
  const int64_t columns = static_cast<int64_t>(length);
  auto options = torch::TensorOptions().dtype(torch::kLong);
  Batch batch;
  batch.input_ids = torch::full({rows, columns}, pad_id, options);
  batch.attention_mask = torch::zeros({rows, columns}, options);
  batch.labels = torch::full({rows, columns}, kIgnoreIndex, options);
  batch.token_type_ids = torch::zeros({rows, columns}, options);
  batch.class_labels = torch::full({rows}, -1, options);
  int64_t* ids = batch.input_ids.data_ptr<int64_t>();
  int64_t* mask = batch.attention_mask.data_ptr<int64_t>();
  int64_t* labels = batch.labels.data_ptr<int64_t>();
  for (int64_t row = 0; row < rows; ++row) {
    const Example& example = *examples[row];
    const size_t size = example.input_ids.size();
    std::copy(example.input_ids.begin(), example.input_ids.end(), ids + row * columns);
    std::copy(example.labels.begin(), example.labels.end(), labels + row * columns);
    if (example.segment_lengths.empty()) {
      std::fill(mask + row * columns, mask + row * columns + size, 1);
    } else {  // a packed row numbers its examples 1, 2, ... (models/layers.h)
      const auto& segments = example.segment_lengths;
      check(std::all_of(segments.begin(), segments.end(), [](int64_t segment) { return segment > 0; }) &&
                std::accumulate(segments.begin(), segments.end(), int64_t{0}) == static_cast<int64_t>(size),
            "cannot collate a packed row whose example lengths do not add up to its length");
      int64_t* at = mask + row * columns;
      int64_t number = 0;
      for (int64_t segment : segments) {
        std::fill(at, at + segment, ++number);
        at += segment;
      }
    }
    check(example.token_type_ids.empty() || example.token_type_ids.size() == size,
          "cannot collate an example whose token types and input ids differ in length");
    std::copy(example.token_type_ids.begin(), example.token_type_ids.end(),
              batch.token_type_ids.data_ptr<int64_t>() + row * columns);
    batch.class_labels[row] = example.class_label;
    batch.tokens += static_cast<int64_t>(size);
    // The loss shifts labels left by one, so the first label of each row is never scored.
    for (size_t t = 1; t < size; ++t) batch.scored_tokens += example.labels[t] != kIgnoreIndex;
  }
  return batch;
}

namespace {

// A uniform integer in [0, bound), by rejection, so that the result depends only on the mt19937_64 stream
// (whose output the standard fixes), unlike std::uniform_int_distribution.
uint64_t uniform_below(std::mt19937_64& generator, uint64_t bound) {
  const uint64_t threshold = (0 - bound) % bound;  // 2^64 mod bound: the biased low range to reject
  while (true) {
    uint64_t value = generator();
    if (value >= threshold) return value % bound;
  }
}

}  // namespace

BatchSampler::BatchSampler(size_t num_examples, int64_t batch_size, bool shuffle, uint64_t seed)
    : num_examples_(num_examples), batch_size_(batch_size), shuffle_(shuffle), seed_(seed) {
  check(batch_size > 0, "batch_size must be positive (got " + std::to_string(batch_size) + ")");
}

size_t BatchSampler::batches_per_epoch() const {
  return (num_examples_ + static_cast<size_t>(batch_size_) - 1) / static_cast<size_t>(batch_size_);
}

const std::vector<size_t>& BatchSampler::order(int64_t epoch) const {
  if (cached_ && cached_epoch_ == epoch) return cached_order_;
  cached_order_.resize(num_examples_);
  for (size_t i = 0; i < num_examples_; ++i) cached_order_[i] = i;
  if (shuffle_) {
    // Fisher–Yates written out (std::shuffle's algorithm varies between standard libraries).
    std::mt19937_64 generator(seed_ * 1000003ULL + static_cast<uint64_t>(epoch));
    for (size_t i = num_examples_; i > 1; --i) {
      size_t j = static_cast<size_t>(uniform_below(generator, i));
      std::swap(cached_order_[i - 1], cached_order_[j]);
    }
  }
  cached_epoch_ = epoch;
  cached_ = true;
  return cached_order_;
}

std::vector<size_t> BatchSampler::batch(int64_t epoch, size_t index) const {
  check(index < batches_per_epoch(), "batch " + std::to_string(index) + " is out of range: an epoch has " +
                                         std::to_string(batches_per_epoch()) + " batches");
  const std::vector<size_t>& indices = order(epoch);
  size_t start = index * static_cast<size_t>(batch_size_);
  size_t end = std::min(num_examples_, start + static_cast<size_t>(batch_size_));
  return std::vector<size_t>(indices.begin() + start, indices.begin() + end);
}

}  // namespace peft
