// Draws the peft-compare table as one SVG document: the metric against trainable parameters, the metric against
// peak memory, and total compute against the number of predictions (where fine-tuning pays off against in-context
// learning). Standard library only: the SVG is written as text, with numbers formatted independently of the locale.
#pragma once

#include <string>
#include <vector>

namespace peft {

// One row of the comparison as the plot sees it. kind: "peft", "full" (full fine-tuning) or "icl" (in-context
// learning, which trains nothing: trainable_parameters and training_flops are 0). Rows of any other kind (e.g.
// "failed") are never drawn.
struct PlotRow {
  std::string label;                // e.g. "lora", "ICL K=4"
  std::string kind;                 // "peft" | "full" | "icl"
  double trainable_parameters = 0;  // count
  double peak_memory_bytes = 0;     // training peak (ICL: inference peak)
  double metric = 0;                // held-out metric
  double training_flops = 0;        // total training FLOPs (0 for ICL)
  double inference_flops = 0;       // FLOPs per prediction (per held-out example)
};

struct PlotOptions {
  std::string title;            // e.g. "stories260K on e2e_nlg_sample (200 steps)"
  std::string metric_name;      // e.g. "held-out loss" or "accuracy"
  bool lower_is_better = true;  // loss: true; accuracy: false (said on the metric axis title)
};

// The whole SVG document, three panels side by side, each a <g id="panel-..."> element:
//  1. "panel-parameters": metric (linear) against trainable parameters (log10); ICL rows are dashed horizontal lines.
//  2. "panel-memory": metric against peak memory (log2, binary units); ICL points are hollow.
//  3. "panel-compute": training_flops + N * inference_flops against predictions N (both log10), one line per row;
//     a small circle wherever a peft/full line crosses an ICL line (the break-even N*).
// Values a panel cannot place (not finite, or not positive on a log axis) leave the row out of that panel; an empty
// panel still has its axes and says "no data".
std::string comparison_svg(const std::vector<PlotRow>& rows, const PlotOptions& options);

// The N > 0 at which `method` (trained once, then cheaper or dearer per prediction) and `icl` cost the same total
// compute; negative when their compute lines never cross for N > 0.
double break_even_predictions(const PlotRow& method, const PlotRow& icl);

// Escapes &, <, >, " and ' for use in SVG text and attribute values.
std::string xml_escape(const std::string& text);

// `value` with exactly `decimals` digits after the point, always with '.', whatever the locale; "0" for NaN/inf.
std::string format_fixed(double value, int decimals);

// Tick label of 10^exponent: "1", "10", "100", "1k", "10k", ..., "100P", and "1e18" / "1e-3" beyond SI prefixes.
std::string decade_label(int exponent);

// Tick label of 2^exponent bytes in binary units: "512 B", "1 KiB", "32 MiB", "2 GiB".
std::string bytes_label(int exponent);

// 4 to 6 evenly spaced round values (steps 1, 2, 2.5 or 5 times a power of ten) whose span covers [lo, hi].
std::vector<double> nice_ticks(double lo, double hi);

}  // namespace peft
