#include "io/tokenizers/tokenizer_files.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json_depth.h"
#include "io/tokenizers/byte_level_bpe.h"
#include "io/tokenizers/wordpiece.h"

namespace peft {
namespace {

using nlohmann::json;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), "cannot read " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

json read_json(const std::string& path) { return parse_json(read_file(path), path); }

std::string type_of(const json& value) {
  return value.is_object() && value.contains("type") && value["type"].is_string() ? value["type"].get<std::string>()
                                                                                  : "?";
}

std::vector<AddedToken> added_tokens(const json& file) {
  std::vector<AddedToken> out;
  if (!file.contains("added_tokens") || !file["added_tokens"].is_array()) return out;
  for (const auto& item : file["added_tokens"]) {
    out.push_back({item.at("content").get<std::string>(), item.at("id").get<int64_t>(), item.value("special", false),
                   item.value("lstrip", false), item.value("rstrip", false)});
  }
  return out;
}

std::vector<std::pair<std::string, int64_t>> vocabulary(const json& vocab) {
  std::vector<std::pair<std::string, int64_t>> out;
  out.reserve(vocab.size());
  for (const auto& [token, id] : vocab.items()) out.emplace_back(token, id.get<int64_t>());
  return out;
}

std::unique_ptr<Tokenizer> byte_level_bpe(const std::string& path, const json& file) {
  const json& model = file["model"];
  ByteLevelBpeSpec spec;
  spec.source = path;
  check(!model.value("byte_fallback", false),
        path + ": a SentencePiece-style BPE (byte_fallback) is not supported; use the directory's tokenizer.model");
  const json& normalizer = file.contains("normalizer") ? file["normalizer"] : json();
  check(normalizer.is_null() || type_of(normalizer) == "NFC",
        path + ": normalizer '" + type_of(normalizer) + "' is not supported with BPE (supported: none, NFC)");
  spec.nfc = !normalizer.is_null();

  // ByteLevel alone (GPT-2), or Split(regex, Isolated) then ByteLevel without its own regex (Llama 3, Qwen2/3).
  const json& pre = file.contains("pre_tokenizer") ? file["pre_tokenizer"] : json();
  const json* byte_level = nullptr;
  if (type_of(pre) == "ByteLevel") {
    byte_level = &pre;
    if (pre.value("use_regex", true)) spec.pattern = kGpt2Pattern;
  } else if (type_of(pre) == "Sequence" && pre.contains("pretokenizers") && pre["pretokenizers"].size() == 2 &&
             type_of(pre["pretokenizers"][0]) == "Split" && type_of(pre["pretokenizers"][1]) == "ByteLevel") {
    const json& split = pre["pretokenizers"][0];
    check(split.value("behavior", "") == "Isolated" && !split.value("invert", false) && split.contains("pattern") &&
              split["pattern"].contains("Regex"),
          path + ": only a Split pre-tokenizer with a Regex pattern, behavior Isolated and invert false is supported");
    spec.pattern = split["pattern"]["Regex"].get<std::string>();
    byte_level = &pre["pretokenizers"][1];
    check(!byte_level->value("use_regex", true),
          path + ": a Split followed by ByteLevel with use_regex is not supported");
  } else {
    throw Error(path + ": pre_tokenizer '" + type_of(pre) +
                "' is not supported with BPE (supported: byte-level BPE as GPT-2, Llama 3 and Qwen write it)");
  }
  spec.add_prefix_space = byte_level->value("add_prefix_space", false);
  spec.ignore_merges = model.value("ignore_merges", false);
  spec.vocab = vocabulary(model.at("vocab"));
  for (const auto& merge : model.at("merges")) {
    if (merge.is_array()) {
      spec.merges.emplace_back(merge.at(0).get<std::string>(), merge.at(1).get<std::string>());
    } else {
      std::string text = merge.get<std::string>();
      size_t space = text.find(' ');
      check(space != std::string::npos, path + ": merge '" + text + "' is not two tokens separated by a space");
      spec.merges.emplace_back(text.substr(0, space), text.substr(space + 1));
    }
  }
  spec.added = added_tokens(file);
  return std::make_unique<ByteLevelBpeTokenizer>(std::move(spec));
}

std::unique_ptr<Tokenizer> wordpiece(const std::string& path, const json& file) {
  const json& model = file["model"];
  WordPieceSpec spec;
  spec.source = path;
  const json& normalizer = file.contains("normalizer") ? file["normalizer"] : json();
  if (normalizer.is_null()) {
    spec.clean_text = spec.handle_chinese_chars = spec.strip_accents = spec.lowercase = false;
  } else {
    check(type_of(normalizer) == "BertNormalizer", path + ": normalizer '" + type_of(normalizer) +
                                                       "' is not supported with WordPiece (supported: BertNormalizer)");
    spec.clean_text = normalizer.value("clean_text", true);
    spec.handle_chinese_chars = normalizer.value("handle_chinese_chars", true);
    spec.lowercase = normalizer.value("lowercase", true);
    const json& strip = normalizer.contains("strip_accents") ? normalizer["strip_accents"] : json();
    spec.strip_accents = strip.is_boolean() ? strip.get<bool>() : spec.lowercase;
  }
  const json& pre = file.contains("pre_tokenizer") ? file["pre_tokenizer"] : json();
  check(type_of(pre) == "BertPreTokenizer",
        path + ": pre_tokenizer '" + type_of(pre) + "' is not supported with WordPiece (supported: BertPreTokenizer)");
  spec.unk_token = model.value("unk_token", "[UNK]");
  spec.continuing_subword_prefix = model.value("continuing_subword_prefix", "##");
  spec.max_input_chars_per_word = model.value("max_input_chars_per_word", int64_t{100});
  spec.vocab = vocabulary(model.at("vocab"));
  spec.added = added_tokens(file);
  return std::make_unique<WordPieceTokenizer>(std::move(spec));
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer_json(const std::string& path) {
  json file = read_json(path);
  check(file.is_object() && file.contains("model") && file["model"].is_object(), path + ": no 'model' object");
  std::string type = type_of(file["model"]);
  try {
    if (type == "BPE") return byte_level_bpe(path, file);
    if (type == "WordPiece") return wordpiece(path, file);
  } catch (const json::exception& e) {
    throw Error(path + ": unexpected layout (" + std::string(e.what()) + ")");
  }
  throw Error(path + ": tokenizer model type '" + type + "' is not supported (supported: BPE (byte-level), WordPiece)");
}

std::unique_ptr<Tokenizer> load_gpt2_vocabulary(const std::string& encoder_json, const std::string& vocab_bpe) {
  json encoder = read_json(encoder_json);
  check(encoder.is_object(), encoder_json + ": expected a JSON object of token -> id");
  ByteLevelBpeSpec spec;
  spec.source = encoder_json + " + " + vocab_bpe;
  spec.pattern = kGpt2Pattern;
  try {
    spec.vocab = vocabulary(encoder);
  } catch (const json::exception& e) {
    throw Error(encoder_json + ": token ids must be integers (" + std::string(e.what()) + ")");
  }
  std::istringstream lines(read_file(vocab_bpe));
  std::string line;
  int64_t number = 0;
  while (std::getline(lines, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line.rfind("#version", 0) == 0) continue;
    size_t space = line.find(' ');
    check(space != std::string::npos && line.find(' ', space + 1) == std::string::npos,
          vocab_bpe + ":" + std::to_string(number) + ": expected two tokens separated by one space");
    spec.merges.emplace_back(line.substr(0, space), line.substr(space + 1));
  }
  if (encoder.contains("<|endoftext|>")) {
    spec.added.push_back({"<|endoftext|>", encoder["<|endoftext|>"].get<int64_t>(), true, false, false});
  }
  return std::make_unique<ByteLevelBpeTokenizer>(std::move(spec));
}

std::unique_ptr<Tokenizer> load_wordpiece_vocabulary(const std::string& vocab_txt, bool lowercase) {
  WordPieceSpec spec;
  spec.source = vocab_txt;
  spec.lowercase = spec.strip_accents = lowercase;
  std::istringstream lines(read_file(vocab_txt));
  std::string line;
  int64_t id = 0;
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) spec.vocab.emplace_back(line, id);
    ++id;
  }
  for (const char* special : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) {
    for (const auto& [token, token_id] : spec.vocab) {
      if (token == special) spec.added.push_back({token, token_id, true, false, false});
    }
  }
  return std::make_unique<WordPieceTokenizer>(std::move(spec));
}

}  // namespace peft
