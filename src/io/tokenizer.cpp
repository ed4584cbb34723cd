#include "io/tokenizer.h"

#include <filesystem>

#include "core/error.h"
#include "io/sentencepiece_tokenizer.h"

namespace fs = std::filesystem;

namespace peft {

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& location, int64_t bos_id, int64_t eos_id) {
  std::error_code error;
  fs::path file = location;
  if (fs::is_directory(location, error)) {
    file = fs::path(location) / "tokenizer.model";
    if (!fs::exists(file, error)) {
      std::string message = "no tokenizer found in " + location + " (looked for tokenizer.model)";
      if (fs::exists(fs::path(location) / "tokenizer.json", error))
        message += "; tokenizer.json is there, but only SentencePiece tokenizer.model files are supported";
      throw Error(message);
    }
  } else if (!fs::exists(location, error)) {
    throw Error("tokenizer not found: " + location + " (no such file or directory)");
  }
  check(fs::is_regular_file(file, error), "cannot load tokenizer " + file.string() + ": not a regular file");

  auto tokenizer = std::make_unique<SentencePieceTokenizer>(file.string());
  // No pad piece (Llama's case): pad with EOS, the usual fine-tuning choice; padding is masked anyway.
  int64_t pad_id = tokenizer->model_pad_id() >= 0 ? tokenizer->model_pad_id() : eos_id;
  tokenizer->set_special_ids(bos_id, eos_id, pad_id);
  return tokenizer;
}

}  // namespace peft
