#include "compare/report.h"

#include <cmath>
#include <cstdio>

#include "compare/plot.h"
#include "core/strings.h"
#include "eval/flops.h"

namespace peft {
namespace {

bool has(const nlohmann::json& row, const char* key) { return row.contains(key) && row[key].is_number(); }
double number(const nlohmann::json& row, const char* key) { return has(row, key) ? row[key].get<double>() : 0.0; }

std::string printf_string(const char* format, double value) {
  char text[64];
  std::snprintf(text, sizeof(text), format, value);
  return text;
}

std::string count_text(double value) {
  if (value >= 1e9) return printf_string("%.2fG", value / 1e9);
  if (value >= 1e6) return printf_string("%.2fM", value / 1e6);
  if (value >= 1e4) return printf_string("%.1fk", value / 1e3);
  return printf_string("%.0f", value);
}

std::string bytes_text(double bytes) {
  if (bytes >= 1024.0 * 1024 * 1024) return printf_string("%.2f GiB", bytes / (1024.0 * 1024 * 1024));
  if (bytes >= 1024.0 * 1024) return printf_string("%.1f MiB", bytes / (1024.0 * 1024));
  if (bytes >= 1024.0) return printf_string("%.1f KiB", bytes / 1024.0);
  return printf_string("%.0f B", bytes);
}

std::string microseconds_text(double seconds) { return printf_string("%.1f µs", seconds * 1e6); }

// A row as the plot sees it; failed and skipped rows are not drawn.
PlotRow plot_row(const nlohmann::json& row) {
  PlotRow plotted;
  plotted.label = row.value("name", "");
  plotted.kind = row.value("status", "") == "ok" ? row.value("kind", "peft") : "failed";
  plotted.trainable_parameters = number(row, "trainable_parameters");
  plotted.peak_memory_bytes = number(row, "peak_memory_bytes");
  plotted.metric = number(row, "metric");
  plotted.training_flops = number(row, "training_flops");
  plotted.inference_flops = number(row, "inference_flops");
  return plotted;
}

std::string break_even_text(const ComparisonReport& report, const nlohmann::json& row) {
  std::vector<std::string> parts;
  for (const auto& other : report.rows) {
    if (other.value("kind", "") != "icl" || other.value("status", "") != "ok" || number(other, "shots") == 0) continue;
    double n = break_even_predictions(plot_row(row), plot_row(other));
    parts.push_back("K=" + printf_string("%.0f", number(other, "shots")) + ": " +
                    (n > 0 ? count_text(std::ceil(n)) : std::string("never")));
  }
  return join(parts, ", ");
}

// One Markdown cell per column, for an ok row.
std::vector<std::string> cells(const ComparisonReport& report, const nlohmann::json& row) {
  bool icl = row.value("kind", "") == "icl";
  double base = number(row, "base_parameters");
  double trainable = number(row, "trainable_parameters");
  std::string trainable_text =
      count_text(trainable) + (base > 0 ? printf_string(" (%.3g%%)", 100.0 * trainable / base) : "");
  std::string changed = has(row, "changed_parameters") ? count_text(number(row, "changed_parameters")) : "—";
  std::string rank = has(row, "delta_rank_max") && number(row, "changed_matrices") > 0
                         ? printf_string("%.0f", number(row, "delta_rank_median")) + " / " +
                               printf_string("%.0f", number(row, "delta_rank_max"))
                         : "—";
  double peak = number(row, "peak_memory_bytes");
  std::string memory =
      bytes_text(peak) + (peak > 0 ? printf_string(" (%.2g%%)", 100.0 * number(row, "weights_bytes") / peak) : "");
  std::string latency = microseconds_text(number(row, "latency_unmerged"));
  double reference = number(row, "latency_base");
  auto against_base = [&](const char* key) {
    return reference > 0 ? printf_string(" (%+.0f%%)", 100.0 * (number(row, key) / reference - 1.0)) : "";
  };
  latency += against_base("latency_unmerged");
  std::string merged = has(row, "latency_merged")
                           ? microseconds_text(number(row, "latency_merged")) + against_base("latency_merged")
                           : "—";
  std::string positions = icl ? printf_string("%.0f", number(row, "demonstration_tokens"))
                              : printf_string("%.0f", number(row, "extra_positions"));
  return {
      row.value("name", ""),
      printf_string("%.4f", number(row, "metric")),
      icl ? "0" : trainable_text,
      changed,
      rank,
      icl ? "—" : bytes_text(number(row, "adapter_bytes")),
      memory,
      icl ? "—" : printf_string("%.1f ms", 1e3 * number(row, "step_seconds")),
      icl ? "—" : count_text(number(row, "tokens_per_second")),
      icl ? "—" : printf_string("%.2f", number(row, "backward_forward_ratio")),
      latency,
      merged,
      positions,
      format_flops(number(row, "training_flops")),
      format_flops(number(row, "inference_flops")),
      icl ? "—" : break_even_text(report, row),
  };
}

}  // namespace

std::string comparison_markdown(const ComparisonReport& report) {
  const std::vector<std::string> header = {"method",
                                           report.metric_name + (report.lower_is_better ? " ↓" : " ↑"),
                                           "trainable (% of base)",
                                           "changed after merge",
                                           "rank ΔW median / max",
                                           "on disk",
                                           "peak memory (weights' share)",
                                           "step",
                                           "tokens/s",
                                           "bwd/fwd",
                                           "latency / token unmerged (vs base)",
                                           "merged (vs base)",
                                           "extra positions",
                                           "training FLOPs",
                                           "FLOPs / prediction",
                                           "cheaper than ICL after N predictions"};
  std::string text = "| " + join(header, " | ") + " |\n|";
  for (size_t i = 0; i < header.size(); ++i) text += i == 0 ? "---|" : "--:|";
  text += "\n";
  for (const auto& row : report.rows) {
    std::string status = row.value("status", "failed");
    if (status == "ok") {
      text += "| " + join(cells(report, row), " | ") + " |\n";
    } else {
      std::string error = row.value("error", "");
      for (auto& c : error) c = c == '|' ? '/' : c;
      text += "| " + row.value("name", "") + " | " + status + ": " + error + " |" +
              std::string(header.size() - 2, '|') + "\n";
    }
  }
  return text;
}

std::string comparison_csv(const ComparisonReport& report) {
  const std::vector<std::string> fields = {"name",
                                           "kind",
                                           "method",
                                           "status",
                                           "metric",
                                           "trainable_parameters",
                                           "base_parameters",
                                           "changed_parameters",
                                           "changed_matrices",
                                           "delta_rank_median",
                                           "delta_rank_max",
                                           "adapter_bytes",
                                           "peak_memory_bytes",
                                           "memory_measure",
                                           "weights_bytes",
                                           "step_seconds",
                                           "tokens_per_second",
                                           "forward_seconds",
                                           "backward_forward_ratio",
                                           "latency_base",
                                           "latency_unmerged",
                                           "latency_merged",
                                           "extra_positions",
                                           "shots",
                                           "demonstration_tokens",
                                           "training_flops",
                                           "inference_flops",
                                           "inference_flops_unmerged",
                                           "eval_examples",
                                           "steps",
                                           "error"};
  std::string text = join(fields, ",") + "\n";
  for (const auto& row : report.rows) {
    std::vector<std::string> values;
    for (const auto& field : fields) {
      if (!row.contains(field) || row[field].is_null()) {
        values.emplace_back();
      } else if (row[field].is_string()) {
        std::string value = row[field].get<std::string>(), quoted = "\"";
        for (char c : value) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
        values.push_back(quoted + "\"");
      } else {
        values.push_back(row[field].dump());
      }
    }
    text += join(values, ",") + "\n";
  }
  return text;
}

nlohmann::json comparison_json(const ComparisonReport& report) {
  return {{"title", report.title},
          {"metric", report.metric_name},
          {"lower_is_better", report.lower_is_better},
          {"rows", report.rows}};
}

std::string comparison_plot(const ComparisonReport& report) {
  std::vector<PlotRow> rows;
  for (const auto& row : report.rows) rows.push_back(plot_row(row));
  return comparison_svg(rows, {report.title, report.metric_name, report.lower_is_better});
}

}  // namespace peft
