// Text <-> token ids. The tokenizer is found beside the model: SentencePiece's tokenizer.model, a tokenizer.json
// (byte-level BPE or WordPiece), GPT-2's encoder.json + vocab.bpe or BERT's vocab.txt. BOS/EOS ids come from the
// model's config.json, not the tokenizer file.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace peft {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Plain ids of `text`, with no BOS/EOS added (callers add them where the data format says).
  virtual std::vector<int64_t> encode(const std::string& text) const = 0;
  virtual std::string decode(const std::vector<int64_t>& ids) const = 0;
  virtual int64_t vocab_size() const = 0;
  // The id of one vocabulary or added token written as text ("[CLS]", "</s>"), or -1 when there is none.
  virtual int64_t token_id(const std::string& token) const { return -1; }

  int64_t bos_id() const { return bos_id_; }
  int64_t eos_id() const { return eos_id_; }
  int64_t pad_id() const { return pad_id_; }
  void set_special_ids(int64_t bos, int64_t eos, int64_t pad) { bos_id_ = bos, eos_id_ = eos, pad_id_ = pad; }

 protected:
  int64_t bos_id_ = 1, eos_id_ = 2, pad_id_ = 0;
};

// `location` is a tokenizer file or a model directory (searched in the order above). Throws peft::Error
// "no tokenizer found in DIR (looked for ...)" or naming an unreadable or unsupported file.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& location, int64_t bos_id, int64_t eos_id);

}  // namespace peft
