// SentencePiece tokenizer.model files (Llama, Llama 2, Mistral, TinyLlama, ...) through Debian's libsentencepiece.
// The library is reached through a small shared library of our own loaded with deep binding: see
// io/sentencepiece_shim/sentencepiece_c_api.h for why it cannot be linked into the executable directly.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/tokenizer.h"

namespace peft {

class SentencePieceTokenizer : public Tokenizer {
 public:
  // Throws peft::Error naming `file` when it cannot be read or is not a SentencePiece model.
  explicit SentencePieceTokenizer(const std::string& file);
  ~SentencePieceTokenizer() override;
  SentencePieceTokenizer(const SentencePieceTokenizer&) = delete;
  SentencePieceTokenizer& operator=(const SentencePieceTokenizer&) = delete;

  std::vector<int64_t> encode(const std::string& text) const override;
  // Ids outside [0, vocab_size()) carry no text and are skipped.
  std::string decode(const std::vector<int64_t>& ids) const override;
  int64_t vocab_size() const override { return vocab_size_; }

  // The model's pad piece, or -1 when it has none (Llama).
  int64_t model_pad_id() const { return pad_id_; }

 private:
  std::string file_;
  void* handle_ = nullptr;
  int64_t vocab_size_ = 0;
  int64_t pad_id_ = -1;
};

}  // namespace peft
