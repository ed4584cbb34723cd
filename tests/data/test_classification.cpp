// Classification data: GLUE's TSV layouts and SuperGLUE's JSONL as they are in ../shared/data (skipped without
// it), and the quirks and errors on small files written here.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "data/classification.h"
#include "test_util.h"

namespace peft {
namespace {

namespace fs = std::filesystem;
using test::error_of;

// A path under ../shared/data; one that does not exist when there is none (the tests then skip).
std::string shared_data(const std::string& relative) {
  auto root = test::shared_data_dir();
  return root ? *root + "/" + relative : "/nonexistent/shared/data/" + relative;
}

std::vector<int64_t> label_counts(const ClassificationSet& set) {
  std::vector<int64_t> counts(set.label_names.size(), 0);
  for (const auto& example : set.examples) ++counts[static_cast<size_t>(example.label)];
  return counts;
}

TEST(Classification, GlueFilesAsShipped) {
  if (!fs::exists(shared_data("glue"))) GTEST_SKIP() << "no ../shared/data/glue";
  auto sst2 = load_classification(shared_data("glue/sst2/dev.tsv"));
  EXPECT_EQ(sst2.format, "sst2");
  EXPECT_EQ(label_counts(sst2), (std::vector<int64_t>{428, 444}));  // SOURCE.md: 444 positive, 428 negative
  EXPECT_EQ(sst2.examples[0].text_a, "it 's a charming and often affecting journey .");  // trailing space dropped
  auto sst2_train = load_classification(shared_data("glue/sst2/train.label_first.crlf.tsv"));
  EXPECT_EQ(label_counts(sst2_train), (std::vector<int64_t>{29780, 37569}));  // label first, CRLF
  EXPECT_EQ(sst2_train.examples[0].text_a, "hide new secretions from the parental units");

  auto cola = load_classification(shared_data("glue/cola/in_domain_dev.tsv"));  // no header
  EXPECT_EQ(cola.format, "cola");
  EXPECT_EQ(cola.examples.size(), 527u);
  EXPECT_EQ(cola.examples[0].text_a, "The sailors rode the breeze clear of the rocks.");

  auto mrpc = load_classification(shared_data("glue/mrpc/dev.tsv"));  // byte-order mark, quotes are text
  EXPECT_EQ(mrpc.format, "mrpc");
  EXPECT_TRUE(mrpc.pairs);
  EXPECT_EQ(mrpc.examples.size(), 408u);
  EXPECT_EQ(mrpc.examples[0].text_b.front(), '"');

  auto rte = load_classification(shared_data("glue/rte/dev.tsv"));
  EXPECT_EQ(rte.label_names, (std::vector<std::string>{"entailment", "not_entailment"}));
  EXPECT_EQ(rte.examples.size(), 277u);
  EXPECT_EQ(rte.examples[0].label, 1);
}

TEST(Classification, SuperGlueJsonl) {
  if (!fs::exists(shared_data("superglue"))) GTEST_SKIP() << "no ../shared/data/superglue";
  auto cb = load_classification(shared_data("superglue/CB/val.jsonl"));
  EXPECT_EQ(cb.label_names, (std::vector<std::string>{"entailment", "contradiction", "neutral"}));
  EXPECT_EQ(cb.examples.size(), 56u);
  EXPECT_TRUE(cb.pairs);
  auto boolq = load_classification(shared_data("superglue/BoolQ/val.jsonl"));
  EXPECT_EQ(boolq.label_names, (std::vector<std::string>{"false", "true"}));
  EXPECT_EQ(boolq.examples.size(), 3270u);
  EXPECT_EQ(boolq.examples[0].text_a, "does ethanol take more energy make that produces");
}

TEST(Classification, QuirksAndErrors) {
  std::string dir = test::temp_dir("classification");
  auto bom = test::write_text(dir + "/bom.tsv", "\xEF\xBB\xBFsentence\tlabel\r\ngood film\t1\r\nbad film\t0\r\n");
  auto set = load_classification(bom);
  EXPECT_EQ(set.examples.size(), 2u);
  EXPECT_EQ(set.examples[1].text_a, "bad film");

  auto columns = test::write_text(dir + "/columns.tsv", "sentence\tlabel\ngood\t1\nno label here\n");
  EXPECT_EQ(error_of([&] { load_classification(columns); }), columns + ":3: expected 2 tab-separated columns, got 1");
  auto unknown = test::write_text(dir + "/unknown.jsonl",
                                  "{\"text\": \"a\", \"label\": \"positive\"}\n"
                                  "{\"text\": \"b\", \"label\": \"neutral\"}\n");
  EXPECT_EQ(error_of([&] {
              load_classification(unknown, {"negative", "positive"});
            }),
            unknown + ":2: label 'neutral' is not one of negative, positive");
  auto header = test::write_text(dir + "/header.tsv", "a\tb\tc\nx\ty\tz\n");
  EXPECT_NE(error_of([&] { load_classification(header); }).find(header + ":1: unrecognised TSV header"),
            std::string::npos);
  auto no_text = test::write_text(dir + "/no_text.jsonl", "{\"label\": 1}\n");
  EXPECT_EQ(error_of([&] { load_classification(no_text); }),
            no_text +
                ":1: no text field (text, text_a/text_b, premise/hypothesis, question/passage, "
                "sentence1/sentence2)");
  EXPECT_EQ(error_of([&] { load_classification(dir + "/data.csv"); }),
            "classification data " + dir + "/data.csv: expected a .tsv or .jsonl file");
}

}  // namespace
}  // namespace peft
