// peft-compare's measurements of one row, each made in a process of its own (peak memory is per process): a method
// trained with its run config, or the base model evaluated with K in-context demonstrations. A row is a JSON object
// (compare/report.h names its fields and how each is measured).
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace peft {

struct RunConfig;

// The held-out metrics a task's rows can report, the default first: language modelling loss, perplexity;
// classification accuracy, f1, macro_f1, matthews.
const std::vector<std::string>& comparison_metrics(const std::string& task);
bool lower_is_better(const std::string& metric);

// Trains, saves and measures; throws peft::Error for any bad input (the caller reports it in the row).
nlohmann::json measure_method(const RunConfig& config, const std::string& name, const std::string& metric);

// The base model with `shots` demonstrations from data.train before each held-out input of data.eval. A setting the
// context cannot hold gives a row with status "skipped" and the reason.
nlohmann::json measure_in_context(const RunConfig& config, int64_t shots, const std::string& name,
                                  const std::string& metric);

}  // namespace peft
