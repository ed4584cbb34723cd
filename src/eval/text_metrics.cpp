#include "eval/text_metrics.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <regex>
#include <sstream>

#include "core/error.h"

namespace peft {
namespace {

std::vector<std::string> split_whitespace(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  for (std::string token; in >> token;) out.push_back(token);
  return out;
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

using NgramCounts = std::map<std::vector<std::string>, int64_t>;

NgramCounts ngrams(const std::vector<std::string>& tokens, size_t order) {
  NgramCounts counts;
  for (size_t start = 0; start + order <= tokens.size(); ++start) {
    ++counts[std::vector<std::string>(tokens.begin() + start, tokens.begin() + start + order)];
  }
  return counts;
}

void check_sizes(const std::vector<std::string>& hypotheses, const std::vector<std::vector<std::string>>& references) {
  check(hypotheses.size() == references.size(), "metrics: " + std::to_string(hypotheses.size()) + " outputs but " +
                                                    std::to_string(references.size()) + " reference sets");
  for (const auto& set : references) check(!set.empty(), "metrics: an output has no reference");
}

// rouge-score's default tokenizer: lower case, every run of non-alphanumeric ASCII characters a separator.
std::vector<std::string> rouge_tokens(const std::string& text) {
  std::string cleaned;
  for (unsigned char c : text) cleaned += std::isalnum(c) ? static_cast<char>(std::tolower(c)) : ' ';
  return split_whitespace(cleaned);
}

int64_t lcs_length(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  std::vector<int64_t> row(b.size() + 1, 0), previous(b.size() + 1, 0);
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      row[j] = a[i - 1] == b[j - 1] ? previous[j - 1] + 1 : std::max(previous[j], row[j - 1]);
    }
    std::swap(row, previous);
  }
  return previous[b.size()];
}

std::string trim(const std::string& text) {
  size_t begin = text.find_first_not_of(" \t\r\n"), end = text.find_last_not_of(" \t\r\n");
  return begin == std::string::npos ? "" : text.substr(begin, end - begin + 1);
}

}  // namespace

std::vector<std::string> tokenize_13a(const std::string& text) {
  std::string line = replace_all(text, "<skipped>", "");
  line = replace_all(line, "-\n", "");
  line = replace_all(line, "\n", " ");
  if (line.find('&') != std::string::npos) {
    line = replace_all(line, "&quot;", "\"");
    line = replace_all(line, "&amp;", "&");
    line = replace_all(line, "&lt;", "<");
    line = replace_all(line, "&gt;", ">");
  }
  line = " " + line + " ";
  // Symbols apart; periods and commas apart unless between digits; a dash after a digit apart.
  static const std::regex symbols(R"(([\{-\~\[-\` -\&\(-\+\:-\@\/]))");
  static const std::regex before_punctuation(R"(([^0-9])([\.,]))");
  static const std::regex after_punctuation(R"(([\.,])([^0-9]))");
  static const std::regex digit_dash(R"(([0-9])(-))");
  line = std::regex_replace(line, symbols, " $1 ");
  line = std::regex_replace(line, before_punctuation, "$1 $2 ");
  line = std::regex_replace(line, after_punctuation, " $1 $2");
  line = std::regex_replace(line, digit_dash, "$1 $2 ");
  return split_whitespace(line);
}

BleuScore corpus_bleu(const std::vector<std::string>& hypotheses,
                      const std::vector<std::vector<std::string>>& references) {
  check_sizes(hypotheses, references);
  std::array<int64_t, 4> correct{}, total{};
  BleuScore result;
  for (size_t i = 0; i < hypotheses.size(); ++i) {
    auto hypothesis = tokenize_13a(hypotheses[i]);
    int64_t length = static_cast<int64_t>(hypothesis.size());
    // The reference length closest to the output's (the shorter on a tie), and each n-gram's most generous count.
    int64_t closest = -1;
    std::vector<std::vector<std::string>> tokenized;
    for (const auto& reference : references[i]) {
      tokenized.push_back(tokenize_13a(reference));
      int64_t n = static_cast<int64_t>(tokenized.back().size());
      if (closest < 0 || std::abs(n - length) < std::abs(closest - length) ||
          (std::abs(n - length) == std::abs(closest - length) && n < closest)) {
        closest = n;
      }
    }
    result.hypothesis_length += length;
    result.reference_length += closest;
    for (size_t order = 1; order <= 4; ++order) {
      NgramCounts best;
      for (const auto& reference : tokenized) {
        for (const auto& [gram, count] : ngrams(reference, order)) best[gram] = std::max(best[gram], count);
      }
      for (const auto& [gram, count] : ngrams(hypothesis, order)) {
        auto found = best.find(gram);
        correct[order - 1] += found == best.end() ? 0 : std::min(count, found->second);
        total[order - 1] += count;
      }
    }
  }
  int64_t sys = result.hypothesis_length, ref = result.reference_length;
  result.brevity_penalty = sys >= ref ? 1.0 : sys > 0 ? std::exp(1.0 - static_cast<double>(ref) / sys) : 0.0;
  if (std::all_of(correct.begin(), correct.end(), [](int64_t c) { return c == 0; })) return result;
  double smooth = 1.0, log_sum = 0.0;
  for (size_t n = 0; n < 4; ++n) {
    if (total[n] == 0) break;  // no n-grams of this order at all: precision stays 0
    if (correct[n] == 0) {     // sacreBLEU's "exp" smoothing
      smooth *= 2.0;
      result.precisions[n] = 100.0 / (smooth * static_cast<double>(total[n]));
    } else {
      result.precisions[n] = 100.0 * static_cast<double>(correct[n]) / static_cast<double>(total[n]);
    }
  }
  for (double p : result.precisions) log_sum += p > 0 ? std::log(p) : -9999999999.0;
  result.score = result.brevity_penalty * std::exp(log_sum / 4.0);
  return result;
}

double rouge_l(const std::string& hypothesis, const std::vector<std::string>& references) {
  auto h = rouge_tokens(hypothesis);
  double best = 0.0;
  for (const auto& reference : references) {
    auto r = rouge_tokens(reference);
    int64_t lcs = h.empty() || r.empty() ? 0 : lcs_length(h, r);
    if (lcs == 0) continue;
    double precision = static_cast<double>(lcs) / h.size(), recall = static_cast<double>(lcs) / r.size();
    best = std::max(best, 2.0 * precision * recall / (precision + recall));
  }
  return best;
}

double corpus_rouge_l(const std::vector<std::string>& hypotheses,
                      const std::vector<std::vector<std::string>>& references) {
  check_sizes(hypotheses, references);
  if (hypotheses.empty()) return 0.0;
  double sum = 0.0;
  for (size_t i = 0; i < hypotheses.size(); ++i) sum += rouge_l(hypotheses[i], references[i]);
  return sum / static_cast<double>(hypotheses.size());
}

double exact_match(const std::vector<std::string>& hypotheses,
                   const std::vector<std::vector<std::string>>& references) {
  check_sizes(hypotheses, references);
  if (hypotheses.empty()) return 0.0;
  int64_t matched = 0;
  for (size_t i = 0; i < hypotheses.size(); ++i) {
    std::string h = trim(hypotheses[i]);
    matched +=
        std::any_of(references[i].begin(), references[i].end(), [&](const std::string& r) { return trim(r) == h; });
  }
  return static_cast<double>(matched) / static_cast<double>(hypotheses.size());
}

}  // namespace peft
