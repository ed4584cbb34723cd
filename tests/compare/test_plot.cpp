#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "compare/plot.h"

namespace peft {
namespace {

size_t count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++n;
  return n;
}

// Whether `word` occurs (case-insensitively) as a whole word, e.g. "nan" in "-nan" or "1,nan" but not "inference".
bool has_word(const std::string& text, const std::string& word) {
  std::string lower = text;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (size_t at = lower.find(word); at != std::string::npos; at = lower.find(word, at + 1)) {
    const bool starts = at == 0 || !std::isalpha(static_cast<unsigned char>(lower[at - 1]));
    const size_t after = at + word.size();
    const bool ends = after == lower.size() || !std::isalpha(static_cast<unsigned char>(lower[after]));
    if (starts && ends) return true;
  }
  return false;
}

TEST(PlotTest, HasWordFindsOnlyWholeWords) {
  EXPECT_TRUE(has_word("x=\"-nan\"", "nan"));
  EXPECT_TRUE(has_word("1,INF 2", "inf"));
  EXPECT_FALSE(has_word("inference", "inf"));
}

// The <g id="panel-..."> element of one panel, up to the next panel (or the end of the document).
std::string panel(const std::string& svg, const std::string& id) {
  const size_t begin = svg.find("<g id=\"" + id + "\"");
  if (begin == std::string::npos) return "";
  const size_t end = svg.find("<g id=\"panel-", begin + 1);
  return svg.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

PlotRow row(const std::string& label, const std::string& kind, double parameters, double memory, double metric,
            double training, double inference) {
  return PlotRow{label, kind, parameters, memory, metric, training, inference};
}

std::vector<PlotRow> sample_rows() {
  const double gib = 1024.0 * 1024.0 * 1024.0;
  return {row("lora", "peft", 2e4, 0.9 * gib, 2.6, 3e12, 2e8), row("ia3", "peft", 3e3, 0.85 * gib, 2.9, 2.8e12, 2e8),
          row("full", "full", 2.6e5, 1.6 * gib, 2.4, 6e12, 2e8), row("ICL K=0", "icl", 0, 0.3 * gib, 4.2, 0, 2e8),
          row("ICL K=4", "icl", 0, 0.5 * gib, 3.5, 0, 1e9)};
}

PlotOptions loss_options() { return PlotOptions{"stories260K on e2e (200 steps)", "held-out loss", true}; }

// Exactly one <svg ...> element spanning the whole document, and every <g> closed.
void expect_well_formed(const std::string& svg) {
  ASSERT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("xmlns=\"http://www.w3.org/2000/svg\""), std::string::npos);
  EXPECT_NE(svg.find(" width=\""), std::string::npos);
  EXPECT_NE(svg.find(" height=\""), std::string::npos);
  EXPECT_EQ(count(svg, "<svg"), 1u);
  EXPECT_EQ(count(svg, "</svg>"), 1u);
  EXPECT_EQ(svg.find_last_not_of(" \n"), svg.rfind("</svg>") + 5);
  EXPECT_EQ(count(svg, "<g ") + count(svg, "<g>"), count(svg, "</g>"));
  EXPECT_EQ(count(svg, "<text"), count(svg, "</text>"));
}

TEST(PlotTest, DocumentIsOneSvgWithBalancedGroups) {
  const std::string svg = comparison_svg(sample_rows(), loss_options());
  expect_well_formed(svg);
  EXPECT_EQ(count(svg, "<g id=\"panel-"), 3u);
  EXPECT_NE(svg.find("held-out loss (lower is better)"), std::string::npos);
}

TEST(PlotTest, HigherIsBetterIsSaidOnTheAxis) {
  const std::string svg = comparison_svg(sample_rows(), PlotOptions{"t", "accuracy", false});
  EXPECT_NE(svg.find("accuracy (higher is better)"), std::string::npos);
  EXPECT_EQ(svg.find("lower is better"), std::string::npos);
}

TEST(PlotTest, EveryPeftAndFullLabelAppearsInEachPanel) {
  const std::string svg = comparison_svg(sample_rows(), loss_options());
  for (const char* id : {"panel-parameters", "panel-memory", "panel-compute"}) {
    const std::string text = panel(svg, id);
    for (const char* label : {">lora<", ">ia3<", ">full<"}) EXPECT_NE(text.find(label), std::string::npos) << id;
  }
}

TEST(PlotTest, LabelsAndTitleAreEscaped) {
  std::vector<PlotRow> rows = sample_rows();
  rows[0].label = "lora r=8 & <alpha>";
  PlotOptions options = loss_options();
  options.title = "Tom's \"model\" & data";
  const std::string svg = comparison_svg(rows, options);
  EXPECT_NE(svg.find("lora r=8 &amp; &lt;alpha&gt;"), std::string::npos);
  EXPECT_NE(svg.find("Tom&apos;s &quot;model&quot; &amp; data"), std::string::npos);
  EXPECT_EQ(svg.find("<alpha>"), std::string::npos);
  EXPECT_EQ(svg.find("& <"), std::string::npos);
  EXPECT_EQ(svg.find("\"model\""), std::string::npos);
}

TEST(PlotTest, XmlEscapeEscapesAllFiveCharacters) {
  EXPECT_EQ(xml_escape("a&b<c>d\"e'f"), "a&amp;b&lt;c&gt;d&quot;e&apos;f");
  EXPECT_EQ(xml_escape("plain"), "plain");
}

TEST(PlotTest, IclRowsAreDashedLinesInParameterPanel) {
  const std::string parameters = panel(comparison_svg(sample_rows(), loss_options()), "panel-parameters");
  EXPECT_EQ(count(parameters, "stroke-dasharray"), 2u);
  for (size_t at = parameters.find("stroke-dasharray"); at != std::string::npos;
       at = parameters.find("stroke-dasharray", at + 1)) {
    EXPECT_EQ(parameters.compare(parameters.rfind('<', at), 5, "<line"), 0);  // a dashed <line>
  }
  EXPECT_NE(parameters.find(">ICL K=0<"), std::string::npos);
  EXPECT_NE(parameters.find(">ICL K=4<"), std::string::npos);
  // ICL has no trainable parameters: a line, not a point, in this panel.
  EXPECT_EQ(count(parameters, "<circle"), 3u);  // lora, ia3, full
}

TEST(PlotTest, BreakEvenOnHandComputedNumbers) {
  const PlotRow method = row("m", "peft", 1e4, 1, 1, 1e12, 1e9);
  const PlotRow icl = row("icl", "icl", 0, 1, 1, 0, 5e9);
  EXPECT_DOUBLE_EQ(break_even_predictions(method, icl), 2.5e2);  // 1e12 / (5e9 - 1e9)
}

TEST(PlotTest, BreakEvenIsNegativeWhenLinesNeverCross) {
  const PlotRow icl = row("icl", "icl", 0, 1, 1, 0, 2e8);
  // As dear per prediction as ICL, and trained on top: always dearer.
  EXPECT_LT(break_even_predictions(row("same", "peft", 1, 1, 1, 3e12, 2e8), icl), 0.0);
  // Dearer per prediction: never catches up.
  EXPECT_LT(break_even_predictions(row("dearer", "peft", 1, 1, 1, 3e12, 1e9), icl), 0.0);
}

TEST(PlotTest, CrossingsAreMarkedInComputePanel) {
  // lora/ia3/full at 2e8 per prediction against ICL K=4 at 1e9: three crossings (3750, 3500, 7500); none against
  // ICL K=0, which costs the same per prediction.
  const std::string compute = panel(comparison_svg(sample_rows(), loss_options()), "panel-compute");
  EXPECT_EQ(count(compute, "<circle"), 3u);
  EXPECT_NE(compute.find("lora breaks even with ICL K=4 at N = 3750"), std::string::npos);
  EXPECT_EQ(count(compute, "<polyline"), 5u);
}

TEST(PlotTest, NonFiniteAndNonPositiveValuesNeverReachTheDocument) {
  std::vector<PlotRow> rows = sample_rows();
  rows[0].metric = std::numeric_limits<double>::quiet_NaN();
  rows[1].peak_memory_bytes = 0;
  rows[1].training_flops = std::numeric_limits<double>::infinity();
  rows[2].trainable_parameters = -5;
  rows[3].inference_flops = std::numeric_limits<double>::quiet_NaN();
  const std::string svg = comparison_svg(rows, loss_options());
  expect_well_formed(svg);
  EXPECT_FALSE(has_word(svg, "nan")) << svg;
  EXPECT_FALSE(has_word(svg, "inf")) << svg;
  // The NaN-metric row is left out of both metric panels, but still has a compute line.
  EXPECT_EQ(panel(svg, "panel-parameters").find(">lora<"), std::string::npos);
  EXPECT_EQ(panel(svg, "panel-memory").find(">lora<"), std::string::npos);
  EXPECT_NE(panel(svg, "panel-compute").find(">lora<"), std::string::npos);
  // Zero memory leaves ia3 out of the memory panel only.
  EXPECT_EQ(panel(svg, "panel-memory").find(">ia3<"), std::string::npos);
  EXPECT_NE(panel(svg, "panel-parameters").find(">ia3<"), std::string::npos);
}

TEST(PlotTest, FailedRowsAreNeverDrawn) {
  std::vector<PlotRow> rows = sample_rows();
  rows.push_back(row("broken_method", "failed", 1e4, 1e9, 2.0, 1e12, 1e8));
  const std::string svg = comparison_svg(rows, loss_options());
  EXPECT_EQ(svg.find("broken_method"), std::string::npos);
  EXPECT_EQ(count(panel(svg, "panel-compute"), "<polyline"), 5u);
}

TEST(PlotTest, EmptyRowsGiveValidPanelsSayingNoData) {
  const std::string svg = comparison_svg({}, loss_options());
  expect_well_formed(svg);
  for (const char* id : {"panel-parameters", "panel-memory", "panel-compute"}) {
    const std::string text = panel(svg, id);
    EXPECT_NE(text.find(">no data<"), std::string::npos) << id;
    EXPECT_GE(count(text, "<text"), 5u) << id;  // tick labels, axis titles, panel title
  }
}

TEST(PlotTest, OnlyFailedRowsAlsoSayNoData) {
  const std::string svg = comparison_svg({row("x", "failed", 1, 1, 1, 1, 1)}, loss_options());
  EXPECT_EQ(count(svg, ">no data<"), 3u);
}

TEST(PlotTest, TickLabelsAreReadable) {
  EXPECT_EQ(decade_label(0), "1");
  EXPECT_EQ(decade_label(3), "1k");
  EXPECT_EQ(decade_label(7), "10M");
  EXPECT_EQ(decade_label(12), "1T");
  EXPECT_EQ(decade_label(20), "1e20");
  EXPECT_EQ(decade_label(-2), "1e-2");
  EXPECT_EQ(bytes_label(9), "512 B");
  EXPECT_EQ(bytes_label(10), "1 KiB");
  EXPECT_EQ(bytes_label(25), "32 MiB");
  EXPECT_EQ(bytes_label(31), "2 GiB");
}

TEST(PlotTest, FormatFixedIsPlainAndNeverNonFinite) {
  EXPECT_EQ(format_fixed(3.14159, 1), "3.1");
  EXPECT_EQ(format_fixed(-0.01, 1), "0.0");
  EXPECT_EQ(format_fixed(std::nan(""), 1), "0");
  EXPECT_EQ(format_fixed(std::numeric_limits<double>::infinity(), 2), "0");
}

TEST(PlotTest, NiceTicksCoverTheRangeWithFourToSixRoundSteps) {
  for (const auto& [lo, hi] : std::vector<std::pair<double, double>>{{2.4, 4.2}, {0.0, 1.0}, {0.61, 0.64}, {-3, 170}}) {
    const std::vector<double> ticks = nice_ticks(lo, hi);
    ASSERT_GE(ticks.size(), 4u) << lo << " " << hi;
    EXPECT_LE(ticks.size(), 6u) << lo << " " << hi;
    EXPECT_LE(ticks.front(), lo);
    EXPECT_GE(ticks.back(), hi);
    const double step = ticks[1] - ticks[0];
    const double mantissa = step / std::pow(10.0, std::floor(std::log10(step)));
    EXPECT_TRUE(std::abs(mantissa - 1) < 1e-9 || std::abs(mantissa - 2) < 1e-9 || std::abs(mantissa - 2.5) < 1e-9 ||
                std::abs(mantissa - 5) < 1e-9)
        << mantissa;
  }
}

}  // namespace
}  // namespace peft
