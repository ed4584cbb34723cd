// Generation metrics against one or more references per output: corpus BLEU as sacreBLEU computes it by default
// (13a tokenisation, case-sensitive, 4-grams, clipped counts over all references, the closest reference length for
// the brevity penalty, "exp" smoothing of zero n-gram matches), ROUGE-L as Google's rouge-score package computes it
// (lower-cased alphanumeric tokens, F1 of the longest common subsequence, the best reference per output, averaged
// over outputs), and exact match.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace peft {

// mteval-v13a's tokenisation, as sacreBLEU's default tokenizer applies it.
std::vector<std::string> tokenize_13a(const std::string& text);

struct BleuScore {
  double score = 0.0;                  // 0..100
  std::array<double, 4> precisions{};  // modified n-gram precisions, 0..100
  double brevity_penalty = 0.0;
  int64_t hypothesis_length = 0, reference_length = 0;
};

// `references[i]` are the references of hypotheses[i] (at least one each). Throws peft::Error when the sizes differ.
BleuScore corpus_bleu(const std::vector<std::string>& hypotheses,
                      const std::vector<std::vector<std::string>>& references);

// ROUGE-L F1 of one output against its best reference (0..1).
double rouge_l(const std::string& hypothesis, const std::vector<std::string>& references);
// Its mean over outputs.
double corpus_rouge_l(const std::vector<std::string>& hypotheses,
                      const std::vector<std::vector<std::string>>& references);

// The fraction of outputs equal to one of their references, ignoring leading and trailing whitespace.
double exact_match(const std::vector<std::string>& hypotheses, const std::vector<std::vector<std::string>>& references);

}  // namespace peft
