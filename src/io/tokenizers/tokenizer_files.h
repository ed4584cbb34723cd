// The tokenizer files of Hugging Face model directories, other than SentencePiece's tokenizer.model:
// tokenizer.json (byte-level BPE or WordPiece), GPT-2's encoder.json + vocab.bpe, and BERT's vocab.txt.
#pragma once

#include <memory>
#include <string>

#include "io/tokenizer.h"

namespace peft {

// Throws peft::Error naming the file for invalid JSON, a model type other than BPE / WordPiece, a BPE that is not
// byte-level (SentencePiece-style Metaspace / byte_fallback files), and pre-tokenizers or normalisers it does not
// implement.
std::unique_ptr<Tokenizer> load_tokenizer_json(const std::string& path);

// GPT-2's original pair: the vocabulary and the ranked merges ("#version" line first); <|endoftext|> is special.
std::unique_ptr<Tokenizer> load_gpt2_vocabulary(const std::string& encoder_json, const std::string& vocab_bpe);

// BERT's vocab.txt (the line number is the id), with BERT's normaliser; `lowercase` from tokenizer_config.json.
std::unique_ptr<Tokenizer> load_wordpiece_vocabulary(const std::string& vocab_txt, bool lowercase);

}  // namespace peft
