#include "eval/in_context.h"

#include <algorithm>
#include <numeric>
#include <random>

#include "core/error.h"
#include "io/tokenizer.h"

namespace peft {

std::vector<size_t> draw_demonstrations(size_t available, int64_t shots, uint64_t seed, const std::string& file) {
  check(shots >= 0, "the number of in-context demonstrations must not be negative, got " + std::to_string(shots));
  check(static_cast<size_t>(shots) <= available, file + " holds " + std::to_string(available) +
                                                     " example(s), fewer than the " + std::to_string(shots) +
                                                     " demonstrations asked for");
  std::vector<size_t> order(available);
  std::iota(order.begin(), order.end(), size_t{0});
  // A partial Fisher-Yates shuffle with a fixed generator: reproducible on every platform, unlike std::shuffle.
  std::mt19937_64 generator(seed);
  for (size_t i = 0; i < static_cast<size_t>(shots); ++i) {
    size_t j = i + static_cast<size_t>(generator() % (available - i));
    std::swap(order[i], order[j]);
  }
  order.resize(static_cast<size_t>(shots));
  return order;
}

std::vector<int64_t> demonstration_tokens(const std::vector<Example>& train, const std::vector<size_t>& drawn,
                                          const Tokenizer& tokenizer) {
  auto separator = tokenizer.encode(kDemonstrationSeparator);
  std::vector<int64_t> tokens;
  for (size_t index : drawn) {
    const auto& ids = train.at(index).input_ids;
    auto begin = ids.begin(), end = ids.end();
    if (begin != end && *begin == tokenizer.bos_id()) ++begin;
    if (begin != end && *(end - 1) == tokenizer.eos_id()) --end;
    tokens.insert(tokens.end(), begin, end);
    tokens.insert(tokens.end(), separator.begin(), separator.end());
  }
  return tokens;
}

std::vector<Example> with_demonstrations(const std::vector<Example>& examples,
                                         const std::vector<int64_t>& demonstrations, int64_t bos_id, int64_t context,
                                         const std::string& what) {
  size_t longest = 0, needed = 0;  // the longest example, and the longest result (BOS + demonstrations + example)
  for (const auto& example : examples) {
    bool has_bos = !example.input_ids.empty() && example.input_ids.front() == bos_id;
    longest = std::max(longest, example.input_ids.size());
    needed = std::max(needed, 1 + demonstrations.size() + example.input_ids.size() - (has_bos ? 1 : 0));
  }
  check(static_cast<int64_t>(needed) <= context,
        what + ": the demonstrations take " + std::to_string(demonstrations.size()) +
            " tokens; with the longest held-out example (" + std::to_string(longest) + " tokens) that exceeds the " +
            std::to_string(context) + " positions of the context; use fewer shots");
  std::vector<Example> out;
  out.reserve(examples.size());
  for (const auto& example : examples) {
    Example result;
    size_t skip = !example.input_ids.empty() && example.input_ids.front() == bos_id ? 1 : 0;
    result.input_ids = {bos_id};
    result.input_ids.insert(result.input_ids.end(), demonstrations.begin(), demonstrations.end());
    result.input_ids.insert(result.input_ids.end(), example.input_ids.begin() + skip, example.input_ids.end());
    result.labels.assign(1 + demonstrations.size(), kIgnoreIndex);
    result.labels.insert(result.labels.end(), example.labels.begin() + skip, example.labels.end());
    // A window's first token had nothing before it to be predicted from: it stays unscored, as without demonstrations.
    if (skip == 0 && !example.labels.empty()) result.labels[1 + demonstrations.size()] = kIgnoreIndex;
    out.push_back(std::move(result));
  }
  return out;
}

std::string generation_demonstrations(const GenerationSet& train, const std::vector<size_t>& drawn,
                                      const std::string& template_text) {
  std::string text;
  for (size_t index : drawn) {
    const auto& example = train.examples.at(index);
    text += generation_prompt(template_text, example) + example.references.front() + kDemonstrationSeparator;
  }
  return text;
}

}  // namespace peft
