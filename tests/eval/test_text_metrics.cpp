// BLEU, ROUGE-L and exact match against values computed by hand from the definitions (sacreBLEU's defaults and
// rouge-score's ROUGE-L): tokenisation, clipping, several references, the brevity penalty and smoothing.
#include <gtest/gtest.h>

#include <cmath>

#include "eval/text_metrics.h"
#include "test_util.h"

namespace peft {
namespace {

using Strings = std::vector<std::string>;

TEST(Tokenize13a, SplitsSymbolsAndPunctuationButNotNumbers) {
  EXPECT_EQ(tokenize_13a("Hello, world. It's 3.5-4 km!"),
            (Strings{"Hello", ",", "world", ".", "It's", "3.5", "-", "4", "km", "!"}));
  EXPECT_EQ(tokenize_13a("a (b) &amp; \"c\"\n1,000 [x]"),
            (Strings{"a", "(", "b", ")", "&", "\"", "c", "\"", "1,000", "[", "x", "]"}));
  EXPECT_EQ(tokenize_13a("price: £20-25."), (Strings{"price", ":", "£20", "-", "25", "."}));
}

TEST(CorpusBleu, PerfectOutputsScoreOneHundred) {
  auto score = corpus_bleu({"the cat sat on the mat"}, {{"the cat sat on the mat"}});
  EXPECT_DOUBLE_EQ(score.score, 100.0);
  EXPECT_DOUBLE_EQ(score.brevity_penalty, 1.0);
}

TEST(CorpusBleu, BrevityPenaltyUsesTheClosestReference) {
  // 6 tokens against 7: every n-gram matches, BP = exp(1 - 7/6).
  auto short_output = corpus_bleu({"the cat sat on the mat"}, {{"the cat sat on the mat today"}});
  EXPECT_NEAR(short_output.brevity_penalty, std::exp(1.0 - 7.0 / 6.0), 1e-12);
  EXPECT_NEAR(short_output.score, 100.0 * std::exp(1.0 - 7.0 / 6.0), 1e-9);  // 84.6482
  EXPECT_EQ(short_output.hypothesis_length, 6);
  EXPECT_EQ(short_output.reference_length, 7);
  // A second reference of the output's length removes the penalty; n-grams are clipped against either.
  auto two = corpus_bleu({"the cat sat on the mat"}, {{"the cat sat on the mat today", "a cat sat on the mat"}});
  EXPECT_EQ(two.reference_length, 6);
  EXPECT_DOUBLE_EQ(two.score, 100.0);
  // Equally close references (5 and 7 tokens around 6): the shorter counts.
  auto tie = corpus_bleu({"a b c d e f"}, {{"a b c d e", "a b c d e f g"}});
  EXPECT_EQ(tie.reference_length, 5);
}

TEST(CorpusBleu, ClippedPrecisionsAndExpSmoothing) {
  // a b c d e against a b c x e: 1-grams 4/5, 2-grams 2/4, 3-grams 1/3, 4-grams 0/2 -> 100 / (2 * 2) = 25.
  auto score = corpus_bleu({"a b c d e"}, {{"a b c x e"}});
  EXPECT_NEAR(score.precisions[0], 80.0, 1e-9);
  EXPECT_NEAR(score.precisions[1], 50.0, 1e-9);
  EXPECT_NEAR(score.precisions[2], 100.0 / 3.0, 1e-9);
  EXPECT_NEAR(score.precisions[3], 25.0, 1e-9);
  EXPECT_NEAR(score.score, std::pow(80.0 * 50.0 * (100.0 / 3.0) * 25.0, 0.25), 1e-9);  // 42.7287
  // "the" six times against a reference holding it twice: clipped to 2/6.
  auto clipped = corpus_bleu({"the the the the the the"}, {{"the cat and the hat"}});
  EXPECT_NEAR(clipped.precisions[0], 100.0 * 2.0 / 6.0, 1e-9);
  // No n-gram in common: 0.
  EXPECT_DOUBLE_EQ(corpus_bleu({"x y z w"}, {{"a b c d"}}).score, 0.0);
}

TEST(CorpusBleu, CountsArePooledOverTheCorpus) {
  // Corpus BLEU is not the mean of sentence BLEUs: 1-grams (4 + 2) / (5 + 2), etc.
  auto score = corpus_bleu({"a b c d e", "p q"}, {{"a b c x e"}, {"p q"}});
  EXPECT_NEAR(score.precisions[0], 100.0 * 6.0 / 7.0, 1e-9);
  EXPECT_NEAR(score.precisions[1], 100.0 * 3.0 / 5.0, 1e-9);
  EXPECT_NEAR(score.precisions[2], 100.0 * 1.0 / 3.0, 1e-9);
  EXPECT_NEAR(score.precisions[3], 25.0, 1e-9);
  EXPECT_NE(test::error_of([] { corpus_bleu({"a"}, {}); }).find("1 outputs but 0 reference sets"), std::string::npos);
}

TEST(RougeL, LongestCommonSubsequenceF1AgainstTheBestReference) {
  // LCS(the cat sat on the mat, the cat is on the mat) = 5 of 6 and 6: F = 5/6.
  EXPECT_NEAR(rouge_l("the cat sat on the mat", {"the cat is on the mat"}), 5.0 / 6.0, 1e-12);
  // Case and punctuation do not count; the best of several references does.
  EXPECT_NEAR(rouge_l("The cat, sat.", {"a dog", "the cat sat"}), 1.0, 1e-12);
  // LCS 2 (a c) of 3 and 4 tokens: P = 2/3, R = 2/4, F = 4/7.
  EXPECT_NEAR(rouge_l("a b c", {"a x c y"}), 4.0 / 7.0, 1e-12);
  EXPECT_DOUBLE_EQ(rouge_l("", {"a"}), 0.0);
  EXPECT_NEAR(corpus_rouge_l({"a b c", "q"}, {{"a x c y"}, {"q"}}), (4.0 / 7.0 + 1.0) / 2.0, 1e-12);
}

TEST(ExactMatch, AnyReferenceIgnoringSurroundingWhitespace) {
  EXPECT_DOUBLE_EQ(exact_match({" yes\n", "no", "maybe"}, {{"yes"}, {"No"}, {"perhaps", "maybe"}}), 2.0 / 3.0);
}

}  // namespace
}  // namespace peft
