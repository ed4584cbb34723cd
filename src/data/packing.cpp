#include "data/packing.h"

#include <algorithm>
#include <map>
#include <numeric>

#include "core/error.h"

namespace peft {

PackedExamples pack_examples(const std::vector<Example>& examples, int64_t max_length) {
  std::vector<size_t> order(examples.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return examples[a].input_ids.size() > examples[b].input_ids.size(); });
  PackedExamples packed;
  std::multimap<int64_t, size_t> rows_by_room;  // free tokens -> row
  for (size_t index : order) {
    const Example& example = examples[index];
    auto length = static_cast<int64_t>(example.input_ids.size());
    check(length <= max_length && example.token_type_ids.empty() && example.segment_lengths.empty(),
          "cannot pack example " + std::to_string(index + 1) + ": only language-modelling examples of at most " +
              std::to_string(max_length) + " tokens are packed");
    if (length == 0) continue;
    // Best fit: the row with the least room that still holds the example, else a new row.
    size_t row = packed.rows.size();
    int64_t room = max_length;
    if (auto fit = rows_by_room.lower_bound(length); fit != rows_by_room.end()) {
      row = fit->second, room = fit->first;
      rows_by_room.erase(fit);
    } else {
      packed.rows.emplace_back();
      packed.members.emplace_back();
    }
    Example& target = packed.rows[row];
    size_t start = target.input_ids.size();
    target.input_ids.insert(target.input_ids.end(), example.input_ids.begin(), example.input_ids.end());
    target.labels.insert(target.labels.end(), example.labels.begin(), example.labels.end());
    // No example predicts the next one's first token.
    target.labels[start] = kIgnoreIndex;
    target.segment_lengths.push_back(length);
    packed.members[row].push_back(index);
    if (room > length) rows_by_room.emplace(room - length, row);
  }
  return packed;
}

}  // namespace peft
