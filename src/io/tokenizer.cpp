#include "io/tokenizer.h"

#include <filesystem>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json_depth.h"
#include "core/strings.h"
#include "io/sentencepiece_tokenizer.h"
#include "io/tokenizers/byte_level_bpe.h"
#include "io/tokenizers/tokenizer_files.h"
#include "io/tokenizers/wordpiece.h"

namespace fs = std::filesystem;

namespace peft {
namespace {

// tokenizer_config.json's do_lower_case (BERT's vocab.txt), true when absent.
bool lowercase_setting(const fs::path& directory) {
  std::ifstream in(directory / "tokenizer_config.json", std::ios::binary);
  if (!in) return true;
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!json_depth_ok(text)) return true;  // as for any other invalid file
  auto config = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  return config.is_object() && config.contains("do_lower_case") && config["do_lower_case"].is_boolean()
             ? config["do_lower_case"].get<bool>()
             : true;
}

std::unique_ptr<Tokenizer> load_file(const fs::path& file) {
  std::error_code error;
  check(fs::is_regular_file(file, error), "cannot load tokenizer " + file.string() + ": not a regular file");
  if (file.filename() == "tokenizer.json") return load_tokenizer_json(file.string());
  if (file.filename() == "vocab.txt")
    return load_wordpiece_vocabulary(file.string(), lowercase_setting(file.parent_path()));
  if (file.filename() == "encoder.json")
    return load_gpt2_vocabulary(file.string(), (file.parent_path() / "vocab.bpe").string());
  return std::make_unique<SentencePieceTokenizer>(file.string());
}

// The tokenizer file of a model directory, in the order a directory with several is read: SentencePiece's model
// first (exact for Llama 1/2 and Mistral, whose tokenizer.json is a conversion of it), then tokenizer.json, then
// GPT-2's and BERT's original vocabulary files.
fs::path find_in(const fs::path& directory) {
  std::error_code error;
  for (const char* name : {"tokenizer.model", "tokenizer.json", "encoder.json", "vocab.txt"}) {
    if (fs::exists(directory / name, error)) return directory / name;
  }
  throw Error("no tokenizer found in " + directory.string() +
              " (looked for tokenizer.model, tokenizer.json, encoder.json + vocab.bpe, vocab.txt)");
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& location, int64_t bos_id, int64_t eos_id) {
  std::error_code error;
  fs::path file = location;
  if (fs::is_directory(location, error)) {
    file = find_in(location);
  } else if (!fs::exists(location, error)) {
    throw Error("tokenizer not found: " + location + " (no such file or directory)");
  }
  auto tokenizer = load_file(file);

  // The padding id: the tokenizer's own pad token when it has one, else EOS (Llama's and GPT-2's case: padding is
  // masked anyway).
  int64_t pad_id = eos_id;
  if (auto* sentencepiece = dynamic_cast<SentencePieceTokenizer*>(tokenizer.get())) {
    if (sentencepiece->model_pad_id() >= 0) pad_id = sentencepiece->model_pad_id();
  } else if (tokenizer->token_id("[PAD]") >= 0) {  // BERT
    pad_id = tokenizer->token_id("[PAD]");
  } else if (tokenizer->token_id("<pad>") >= 0) {  // RoBERTa
    pad_id = tokenizer->token_id("<pad>");
  }
  tokenizer->set_special_ids(bos_id, eos_id, pad_id);
  return tokenizer;
}

}  // namespace peft
