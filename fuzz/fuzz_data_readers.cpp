// Feeds: one data file, written under each extension the readers take, to load_examples (.jsonl, .json, .txt and
// E2E .csv, tokenised with the real stories260K SentencePiece tokenizer, loaded once), load_classification (.tsv,
// .jsonl) and load_generation_set (.csv, .jsonl).
// A finding: a crash or sanitizer report (in our readers or in the tokenizer they feed), an exception other than
// peft::Error, a peft::Error message of more than one line, or an allocation beyond -malloc_limit_mb.
#include <spdlog/spdlog.h>

#include <memory>

#include "build_paths.h"
#include "data/classification.h"
#include "data/dataset.h"
#include "data/generation.h"
#include "fuzz_util.h"
#include "io/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::unique_ptr<peft::Tokenizer> tokenizer = [] {
    spdlog::set_level(spdlog::level::err);  // the readers' warnings (e.g. examples cut to nothing) are expected here
    return peft::load_tokenizer(PEFT_SOURCE_DIR "/third_party/stories260K-hf/tokenizer.model", 1, 2);
  }();
  static const std::string base = peft::fuzz::scratch_dir() + "/data";
  constexpr int64_t kMaxLength = 64;
  for (const std::string extension : {".jsonl", ".json", ".txt", ".csv", ".tsv"}) {
    const std::string path = peft::fuzz::write_input(base + extension, data, size);
    if (extension != ".tsv") peft::fuzz::reads([&] { peft::load_examples(path, *tokenizer, kMaxLength); });
    if (extension == ".tsv" || extension == ".jsonl") peft::fuzz::reads([&] { peft::load_classification(path); });
    if (extension == ".csv" || extension == ".jsonl") peft::fuzz::reads([&] { peft::load_generation_set(path); });
  }
  return 0;
}
