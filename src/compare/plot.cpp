#include "compare/plot.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

namespace peft {

std::string xml_escape(const std::string& text) {
  std::string escaped;
  escaped.reserve(text.size());
  for (char c : text) {
    if (c == '&')
      escaped += "&amp;";
    else if (c == '<')
      escaped += "&lt;";
    else if (c == '>')
      escaped += "&gt;";
    else if (c == '"')
      escaped += "&quot;";
    else if (c == '\'')
      escaped += "&apos;";
    else
      escaped += c;
  }
  return escaped;
}

std::string format_fixed(double value, int decimals) {
  if (!std::isfinite(value)) return "0";
  if (std::abs(value) < 0.5 * std::pow(10.0, -decimals)) value = 0.0;  // never "-0.0"
  char buffer[64];
  // std::to_chars ignores the locale, unlike printf and iostreams.
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value, std::chars_format::fixed, decimals);
  if (result.ec != std::errc()) return "0";
  return std::string(buffer, result.ptr);
}

std::string decade_label(int exponent) {
  static const char* const kPrefixes[] = {"", "k", "M", "G", "T", "P"};
  if (exponent < 0 || exponent >= 18) return "1e" + std::to_string(exponent);
  return std::string("1") + std::string(exponent % 3, '0') + kPrefixes[exponent / 3];
}

std::string bytes_label(int exponent) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  if (exponent < 0) return format_fixed(std::pow(2.0, exponent), 3) + " B";
  const int unit = std::min(exponent / 10, 5);
  return format_fixed(std::pow(2.0, exponent - 10 * unit), 0) + " " + kUnits[unit];
}

std::vector<double> nice_ticks(double lo, double hi) {
  if (!(hi > lo)) hi = lo + 1.0;
  // Among steps m * 10^e, the finest that gives 4-6 ticks; failing that, the count nearest to 5.
  const int top = static_cast<int>(std::floor(std::log10(hi - lo)));
  double best_step = 0.0;
  int best_distance = 1 << 30;
  for (int exponent = top - 2; exponent <= top + 1; ++exponent) {
    for (double mantissa : {1.0, 2.0, 2.5, 5.0}) {
      const double step = mantissa * std::pow(10.0, exponent);
      const int count = static_cast<int>(std::ceil(hi / step - 1e-9) - std::floor(lo / step + 1e-9)) + 1;
      const int distance = count < 4 ? 4 - count : (count > 6 ? count - 6 : 0);
      if (distance < best_distance) best_step = step, best_distance = distance;
    }
  }
  std::vector<double> ticks;
  const auto first = static_cast<long long>(std::floor(lo / best_step + 1e-9));
  const auto last = static_cast<long long>(std::ceil(hi / best_step - 1e-9));
  for (long long k = first; k <= last; ++k) ticks.push_back(static_cast<double>(k) * best_step);
  return ticks;
}

double break_even_predictions(const PlotRow& method, const PlotRow& icl) {
  // Lines a + N b cross where N = (a_method - a_icl) / (b_icl - b_method).
  const double extra_training = method.training_flops - icl.training_flops;
  const double saving_per_prediction = icl.inference_flops - method.inference_flops;
  if (!(saving_per_prediction > 0.0)) return -1.0;
  const double n = extra_training / saving_per_prediction;
  return std::isfinite(n) && n > 0.0 ? n : -1.0;
}

namespace {

constexpr double kPanelWidth = 420;
constexpr double kPanelHeight = 370;
constexpr double kHeaderHeight = 58;  // document title and legend
constexpr double kMarginLeft = 64, kMarginRight = 14, kMarginTop = 30, kMarginBottom = 46;
constexpr double kLabelGutter = 110;  // right of panel 3, where its line labels go (inside, they would cross lines)
constexpr double kDocumentWidth = 3 * kPanelWidth + kLabelGutter;
constexpr double kCharWidth = 6.5;  // rough width of an 11px sans-serif character, to keep labels apart
constexpr double kLineHeight = 12;

bool is_drawn_kind(const PlotRow& row) { return row.kind == "peft" || row.kind == "full" || row.kind == "icl"; }
bool positive(double value) { return std::isfinite(value) && value > 0.0; }

const char* kind_colour(const std::string& kind) {
  if (kind == "full") return "#d62728";
  if (kind == "icl") return "#e68a00";
  return "#1f77b4";
}

std::string num(double value) { return format_fixed(value, 1); }

enum class Transform { kLinear, kLog10, kLog2 };

// One axis: a range in transformed units (the value itself, log10 or log2 of it) with its ticks there.
struct Axis {
  Transform transform = Transform::kLinear;
  double lo = 0.0, hi = 1.0;
  std::vector<double> ticks;
  std::vector<std::string> tick_labels;
  std::string title;

  double fraction(double value) const {
    const double t = transform == Transform::kLog10  ? std::log10(value)
                     : transform == Transform::kLog2 ? std::log2(value)
                                                     : value;
    return (t - lo) / (hi - lo);
  }
};

struct Panel {
  double left, top, width, height;  // the plot area in document pixels
  Axis x, y;
  double px(double value) const { return left + x.fraction(value) * width; }
  double py(double value) const { return top + height - y.fraction(value) * height; }
  double right() const { return left + width; }
  double bottom() const { return top + height; }
};

// The smallest and largest of `values`, or the fallbacks when there are none.
std::pair<double, double> extent(const std::vector<double>& values, double fallback_min, double fallback_max) {
  if (values.empty()) return {fallback_min, fallback_max};
  const auto [min, max] = std::minmax_element(values.begin(), values.end());
  return {*min, *max};
}

Axis linear_axis(const std::vector<double>& values, const std::string& title) {
  auto [lo, hi] = extent(values, 0.0, 1.0);
  if (hi - lo < 1e-12) {  // one value (or all equal): give it room
    const double pad = std::max(0.5, std::abs(lo) * 0.1);
    lo -= pad, hi += pad;
  }
  const double margin = 0.05 * (hi - lo);  // keeps extreme points off the frame
  lo -= margin, hi += margin;
  Axis axis{Transform::kLinear, 0.0, 1.0, nice_ticks(lo, hi), {}, title};
  axis.lo = axis.ticks.front(), axis.hi = axis.ticks.back();
  const double step = axis.ticks[1] - axis.ticks[0];
  int decimals = 0;
  while (decimals < 6 && std::abs(step * std::pow(10.0, decimals) - std::round(step * std::pow(10.0, decimals))) > 1e-6)
    ++decimals;
  for (double tick : axis.ticks) axis.tick_labels.push_back(format_fixed(tick, decimals));
  return axis;
}

// Whole decades around [min_value, max_value] (both positive); at most ~8 labelled.
Axis log10_axis(double min_value, double max_value, const std::string& title) {
  Axis axis{Transform::kLog10,
            std::floor(std::log10(min_value) - 0.15),
            std::ceil(std::log10(max_value) + 0.15),
            {},
            {},
            title};
  const int step = std::max(1, static_cast<int>(std::ceil((axis.hi - axis.lo) / 8.0)));
  for (int e = static_cast<int>(axis.lo); e <= static_cast<int>(axis.hi); e += step) {
    axis.ticks.push_back(e);
    axis.tick_labels.push_back(decade_label(e));
  }
  return axis;
}

// Powers of two of bytes, so ticks read "512 MiB", "1 GiB", "2 GiB".
Axis bytes_axis(double min_bytes, double max_bytes, const std::string& title) {
  double lo = std::log2(min_bytes), hi = std::log2(max_bytes);
  const double pad = std::max(0.5, 0.08 * (hi - lo));
  lo -= pad, hi += pad;
  if (hi - lo < 2.0) lo -= (2.0 - (hi - lo)) / 2, hi = lo + 2.0;  // at least two ticks
  Axis axis{Transform::kLog2, lo, hi, {}, {}, title};
  int step = 1;
  for (int candidate : {1, 2, 5, 10, 20}) {
    step = candidate;
    if ((hi - lo) / candidate <= 6.0) break;
  }
  for (int e = static_cast<int>(std::ceil(lo / step)) * step; e <= hi; e += step) {
    axis.ticks.push_back(e);
    axis.tick_labels.push_back(bytes_label(e));
  }
  return axis;
}

Panel make_panel(int index, Axis x, Axis y) {
  return Panel{index * kPanelWidth + kMarginLeft,
               kHeaderHeight + kMarginTop,
               kPanelWidth - kMarginLeft - kMarginRight,
               kPanelHeight - kMarginTop - kMarginBottom,
               std::move(x),
               std::move(y)};
}

void add_line(std::string& svg, double x1, double y1, double x2, double y2, const std::string& style) {
  svg += "<line x1=\"" + num(x1) + "\" y1=\"" + num(y1) + "\" x2=\"" + num(x2) + "\" y2=\"" + num(y2) + "\" " + style +
         "/>\n";
}

void add_text(std::string& svg, double x, double y, const std::string& text, const std::string& attributes = "") {
  svg += "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\"" + (attributes.empty() ? "" : " " + attributes) + ">" +
         xml_escape(text) + "</text>\n";
}

void add_circle(std::string& svg, double x, double y, double r, const std::string& style, const std::string& tip = "") {
  svg += "<circle cx=\"" + num(x) + "\" cy=\"" + num(y) + "\" r=\"" + num(r) + "\" " + style;
  svg += tip.empty() ? "/>\n" : "><title>" + xml_escape(tip) + "</title></circle>\n";
}

void draw_axes(std::string& svg, const Panel& p, const std::string& panel_title) {
  const std::string grid = "stroke=\"#e4e4e4\" stroke-width=\"1\"";
  for (size_t i = 0; i < p.x.ticks.size(); ++i) {
    const double x = p.left + (p.x.ticks[i] - p.x.lo) / (p.x.hi - p.x.lo) * p.width;
    add_line(svg, x, p.top, x, p.bottom(), grid);
    add_line(svg, x, p.bottom(), x, p.bottom() + 4, "stroke=\"#444\"");
    add_text(svg, x, p.bottom() + 15, p.x.tick_labels[i], "text-anchor=\"middle\"");
  }
  for (size_t i = 0; i < p.y.ticks.size(); ++i) {
    const double y = p.bottom() - (p.y.ticks[i] - p.y.lo) / (p.y.hi - p.y.lo) * p.height;
    add_line(svg, p.left, y, p.right(), y, grid);
    add_line(svg, p.left - 4, y, p.left, y, "stroke=\"#444\"");
    add_text(svg, p.left - 6, y + 4, p.y.tick_labels[i], "text-anchor=\"end\"");
  }
  svg += "<rect x=\"" + num(p.left) + "\" y=\"" + num(p.top) + "\" width=\"" + num(p.width) + "\" height=\"" +
         num(p.height) + "\" fill=\"none\" stroke=\"#444\"/>\n";
  add_text(svg, p.left + p.width / 2, p.bottom() + 34, p.x.title, "text-anchor=\"middle\"");
  const double y_title_x = p.left - 48, y_title_y = p.top + p.height / 2;
  add_text(svg, y_title_x, y_title_y, p.y.title,
           "text-anchor=\"middle\" transform=\"rotate(-90 " + num(y_title_x) + " " + num(y_title_y) + ")\"");
  add_text(svg, p.left + p.width / 2, p.top - 12, panel_title, "text-anchor=\"middle\" font-weight=\"bold\"");
}

void draw_no_data(std::string& svg, const Panel& p) {
  add_text(svg, p.left + p.width / 2, p.top + p.height / 2, "no data", "text-anchor=\"middle\" fill=\"#888\"");
}

struct Label {
  double x, y;  // text anchor point (baseline)
  std::string text, colour;
  bool anchor_end;
  double x_min() const { return anchor_end ? x - text.size() * kCharWidth : x; }
  double x_max() const { return anchor_end ? x : x + text.size() * kCharWidth; }
};

// A label right of its point, or left of it where it would run past the panel's right edge.
Label point_label(const Panel& p, double x, double y, const std::string& text, const std::string& colour) {
  const bool too_wide = x + 6 + text.size() * kCharWidth > p.right();
  return Label{too_wide ? x - 6 : x + 6, y - 4, text, colour, too_wide};
}

bool overlap(const Label& a, const Label& b) {
  return a.x_min() < b.x_max() && b.x_min() < a.x_max() && std::abs(a.y - b.y) < kLineHeight;
}

// Moves labels down, top to bottom, until none overlaps one placed before it: cheap, and enough for a dozen rows.
void draw_labels(std::string& svg, std::vector<Label> labels) {
  std::sort(labels.begin(), labels.end(), [](const Label& a, const Label& b) { return a.y < b.y; });
  for (size_t i = 0; i < labels.size(); ++i) {
    // Each move puts the label just below another one, so y only grows and the loop ends.
    for (bool moved = true; moved;) {
      moved = false;
      for (size_t j = 0; j < i; ++j) {
        if (overlap(labels[i], labels[j])) labels[i].y = labels[j].y + kLineHeight, moved = true;
      }
    }
    add_text(svg, labels[i].x, labels[i].y, labels[i].text,
             std::string("fill=\"") + labels[i].colour + "\"" + (labels[i].anchor_end ? " text-anchor=\"end\"" : ""));
  }
}

std::string metric_name(const PlotOptions& options) {
  return options.metric_name.empty() ? "metric" : options.metric_name;
}

std::string metric_title(const PlotOptions& options) {
  return metric_name(options) + (options.lower_is_better ? " (lower is better)" : " (higher is better)");
}

void draw_marker(std::string& svg, double x, double y, const std::string& kind) {
  const std::string colour = kind_colour(kind);
  add_circle(svg, x, y, 4,
             kind == "icl" ? "fill=\"white\" stroke=\"" + colour + "\" stroke-width=\"2\""
                           : "fill=\"" + colour + "\" stroke=\"white\"");
}

// A marker and a label per row at (row.*x_field, row.metric).
void draw_points(const Panel& p, const std::vector<const PlotRow*>& points, double PlotRow::*x_field, std::string& svg,
                 std::vector<Label>& labels) {
  for (const PlotRow* row : points) {
    const double x = p.px(row->*x_field), y = p.py(row->metric);
    draw_marker(svg, x, y, row->kind);
    labels.push_back(point_label(p, x, y, row->label, kind_colour(row->kind)));
  }
}

// 1. Metric against trainable parameters; ICL trains nothing, so it is a dashed reference line.
void parameters_panel(std::string& svg, const std::vector<PlotRow>& rows, const PlotOptions& options) {
  std::vector<const PlotRow*> points, baselines;
  std::vector<double> metrics, parameters;
  for (const PlotRow& row : rows) {
    if (!is_drawn_kind(row) || !std::isfinite(row.metric)) continue;
    if (row.kind == "icl") {
      baselines.push_back(&row);
    } else if (positive(row.trainable_parameters)) {
      points.push_back(&row), parameters.push_back(row.trainable_parameters);
    } else {
      continue;
    }
    metrics.push_back(row.metric);
  }
  const auto [min_x, max_x] = extent(parameters, 1e3, 1e6);
  const Panel p =
      make_panel(0, log10_axis(min_x, max_x, "trainable parameters"), linear_axis(metrics, metric_title(options)));
  svg += "<g id=\"panel-parameters\">\n";
  draw_axes(svg, p, "1. " + metric_name(options) + " vs trainable parameters");
  std::vector<Label> labels;
  for (const PlotRow* row : baselines) {
    const double y = p.py(row->metric);
    add_line(svg, p.left, y, p.right(), y,
             std::string("stroke=\"") + kind_colour("icl") + "\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"");
    labels.push_back(Label{p.left + 4, y - 4, row->label, kind_colour("icl"), false});
  }
  draw_points(p, points, &PlotRow::trainable_parameters, svg, labels);
  draw_labels(svg, labels);
  if (points.empty() && baselines.empty()) draw_no_data(svg, p);
  svg += "</g>\n";
}

// 2. Metric against peak memory, every kind as a point (ICL: inference peak).
void memory_panel(std::string& svg, const std::vector<PlotRow>& rows, const PlotOptions& options) {
  std::vector<const PlotRow*> points;
  std::vector<double> metrics, memory;
  for (const PlotRow& row : rows) {
    if (!is_drawn_kind(row) || !std::isfinite(row.metric) || !positive(row.peak_memory_bytes)) continue;
    points.push_back(&row), metrics.push_back(row.metric), memory.push_back(row.peak_memory_bytes);
  }
  const auto [min_x, max_x] = extent(memory, 1 << 20, 1 << 30);
  const Panel p = make_panel(1, bytes_axis(min_x, max_x, "peak memory"), linear_axis(metrics, metric_title(options)));
  svg += "<g id=\"panel-memory\">\n";
  draw_axes(svg, p, "2. " + metric_name(options) + " vs peak memory");
  std::vector<Label> labels;
  draw_points(p, points, &PlotRow::peak_memory_bytes, svg, labels);
  draw_labels(svg, labels);
  if (points.empty()) draw_no_data(svg, p);
  svg += "</g>\n";
}

bool has_compute_line(const PlotRow& row) {
  return is_drawn_kind(row) && std::isfinite(row.training_flops) && std::isfinite(row.inference_flops) &&
         row.training_flops >= 0 && row.inference_flops >= 0 && row.training_flops + row.inference_flops > 0;
}

double total_compute(const PlotRow& row, double predictions) {
  return row.training_flops + predictions * row.inference_flops;
}

// 3. Total compute against predictions: fine-tuning pays for itself after N* predictions if it is cheaper per
// prediction than an ICL prompt; circles mark those break-even points.
void compute_panel(std::string& svg, const std::vector<PlotRow>& rows) {
  std::vector<const PlotRow*> lines;
  for (const PlotRow& row : rows)
    if (has_compute_line(row)) lines.push_back(&row);
  struct Crossing {
    const PlotRow *method, *icl;
    double n;
  };
  std::vector<Crossing> crossings;
  double largest_n = 0;
  for (const PlotRow* method : lines) {
    if (method->kind == "icl") continue;
    for (const PlotRow* icl : lines) {
      if (icl->kind != "icl") continue;
      const double n = break_even_predictions(*method, *icl);
      if (n >= 1.0) crossings.push_back({method, icl, n}), largest_n = std::max(largest_n, n);
    }
  }
  // Up to 10^7 predictions, or ten times the furthest break-even point (at least 10^4, at most 10^15).
  const double last_decade = largest_n > 0 ? std::clamp(std::ceil(std::log10(largest_n)) + 1, 4.0, 15.0) : 7.0;
  const double max_n = std::pow(10.0, last_decade);
  double min_y = 1e9, max_y = 1e12;
  if (!lines.empty()) {
    min_y = max_y = total_compute(*lines[0], 1);
    for (const PlotRow* row : lines)
      min_y = std::min(min_y, total_compute(*row, 1)), max_y = std::max(max_y, total_compute(*row, max_n));
  }
  Axis x_axis{Transform::kLog10, 0.0, last_decade, {}, {}, "predictions N"};
  for (int e = 0; e <= last_decade; e += last_decade > 8 ? 2 : 1)
    x_axis.ticks.push_back(e), x_axis.tick_labels.push_back(decade_label(e));
  const Panel p = make_panel(2, x_axis, log10_axis(min_y, max_y, "total FLOPs (training + N x inference)"));
  svg += "<g id=\"panel-compute\">\n";
  draw_axes(svg, p, "3. total compute vs predictions");
  std::vector<Label> labels;
  constexpr int kSamples = 48;  // the lines bend in log-log, so sample them
  for (const PlotRow* row : lines) {
    const std::string colour = kind_colour(row->kind);
    svg += "<polyline fill=\"none\" stroke=\"" + colour + "\" stroke-width=\"1.5\"" +
           (row->kind == "icl" ? " stroke-dasharray=\"6 4\"" : "") + " points=\"";
    for (int i = 0; i < kSamples; ++i) {
      const double n = std::pow(10.0, last_decade * i / (kSamples - 1));
      svg += (i ? " " : "") + num(p.px(n)) + "," + num(p.py(total_compute(*row, n)));
    }
    svg += "\"/>\n";
    // In the gutter, or as far right as the document allows for a long label.
    const double x = std::min(p.right() + 4, kDocumentWidth - 2 - row->label.size() * kCharWidth);
    labels.push_back(Label{x, p.py(total_compute(*row, max_n)) + 4, row->label, colour, false});
  }
  for (const Crossing& c : crossings) {
    if (c.n > max_n) continue;
    add_circle(svg, p.px(c.n), p.py(total_compute(*c.icl, c.n)), 3.5, "fill=\"white\" stroke=\"#222\"",
               c.method->label + " breaks even with " + c.icl->label + " at N = " + format_fixed(c.n, 0));
  }
  draw_labels(svg, labels);
  if (lines.empty()) draw_no_data(svg, p);
  svg += "</g>\n";
}

void legend(std::string& svg, double y) {
  const struct {
    const char* kind;
    const char* text;
  } entries[] = {{"peft", "PEFT method"}, {"full", "full fine-tuning"}, {"icl", "in-context learning (no training)"}};
  double x = kMarginLeft;
  for (const auto& entry : entries) {
    draw_marker(svg, x, y - 4, entry.kind);
    add_text(svg, x + 8, y, entry.text);
    x += 40 + std::string(entry.text).size() * kCharWidth;
  }
  add_circle(svg, x, y - 4, 3.5, "fill=\"white\" stroke=\"#222\"");
  add_text(svg, x + 8, y, "break-even with an ICL baseline (panel 3)");
}

}  // namespace

std::string comparison_svg(const std::vector<PlotRow>& rows, const PlotOptions& options) {
  const double width = kDocumentWidth, height = kHeaderHeight + kPanelHeight;
  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(width) + "\" height=\"" + num(height) +
                    "\" viewBox=\"0 0 " + num(width) + " " + num(height) +
                    "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  add_text(svg, width / 2, 22, options.title, "text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\"");
  svg += "<g id=\"legend\">\n";
  legend(svg, 44);
  svg += "</g>\n";
  parameters_panel(svg, rows, options);
  memory_panel(svg, rows, options);
  compute_panel(svg, rows);
  svg += "</svg>\n";
  return svg;
}

}  // namespace peft
