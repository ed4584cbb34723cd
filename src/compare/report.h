// peft-compare's table: one row per method (JSON objects from compare/measure.h; a failed method has status "failed"
// and its error), written as Markdown for people, CSV for spreadsheets and JSON with every number.
//
// Row fields: name, kind (peft | full | icl), method, status (ok | failed | skipped), error; trainable_parameters,
// base_parameters; changed_parameters, changed_matrices, delta_rank_median, delta_rank_max (methods that merge);
// adapter_bytes; peak_memory_bytes, memory_measure, weights_bytes; step_seconds, tokens_per_second, forward_seconds,
// backward_forward_ratio; latency_base, latency_unmerged, latency_merged (seconds per held-out token; an ICL row's
// latency_unmerged is its latency with the demonstrations);
// extra_positions; training_flops, inference_flops (per prediction, as deployed), inference_flops_unmerged;
// metric; shots, demonstration_tokens (ICL); eval_examples; steps.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace peft {

struct ComparisonReport {
  std::string title;        // what was compared: model, data, steps
  std::string metric_name;  // "held-out loss" or "accuracy"
  bool lower_is_better = true;
  std::vector<nlohmann::json> rows;
};

std::string comparison_markdown(const ComparisonReport& report);
std::string comparison_csv(const ComparisonReport& report);
nlohmann::json comparison_json(const ComparisonReport& report);

// The rows as the plot draws them (compare/plot.h).
std::string comparison_plot(const ComparisonReport& report);

}  // namespace peft
