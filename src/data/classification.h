// Classification data sets: one text (or a pair) and a label per example, from
//   GLUE TSV files as GLUE ships them: SST-2 (sentence, label, either column order), CoLA (no header: source,
//     label, original label, sentence), MRPC (Quality, #1 ID, #2 ID, #1 String, #2 String; a byte-order mark),
//     RTE (index, sentence1, sentence2, label), and any TSV whose header names a `label` column and one or two
//     text columns (sentence / sentence1 / sentence2 / text / text_a / text_b / question / passage);
//   JSONL: {"text", "label"}, {"text_a", "text_b", "label"}, and SuperGLUE's {"premise", "hypothesis", "label"}
//     (RTE, CB), {"question", "passage", "label"} (BoolQ), {"sentence1", "sentence2", "label"}.
// CRLF line ends and a UTF-8 byte-order mark are accepted; GLUE TSVs are not quoted (quotes are text).
// Labels are given by name (numbers and booleans are written as text: "0", "true"); `label_names` fixes their
// order, or the task's customary order when it is empty (0/1; entailment/not_entailment; entailment/
// contradiction/neutral; false/true).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace peft {

struct ClassificationExample {
  std::string text_a;
  std::string text_b;  // empty for single-text tasks
  int64_t label = 0;   // index into ClassificationSet::label_names
};

struct ClassificationSet {
  std::string format;  // "sst2", "cola", "mrpc", "rte", "tsv", "jsonl"
  std::vector<std::string> label_names;
  std::vector<ClassificationExample> examples;
  bool pairs = false;
};

// Throws peft::Error naming the file (and line) for: an unreadable file, a TSV row with another number of
// columns than the header, a JSON line that is not an object or lacks the text or label fields, a label not
// among `label_names`, and a file with no examples.
ClassificationSet load_classification(const std::string& path, std::vector<std::string> label_names = {});

}  // namespace peft
