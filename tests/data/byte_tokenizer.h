// A tokenizer with one id per byte (ids 3..258; BOS 1 and EOS 2 only as ids), for data tests that need no real
// vocabulary. EOS decodes as "</s>" so that a scored end of turn is visible in decoded text.
#pragma once

#include <string>
#include <vector>

#include "io/tokenizer.h"

namespace peft::test {

class ByteTokenizer : public Tokenizer {
 public:
  std::vector<int64_t> encode(const std::string& text) const override {
    std::vector<int64_t> ids;
    for (unsigned char c : text) ids.push_back(c + 3);
    return ids;
  }
  std::string decode(const std::vector<int64_t>& ids) const override {
    std::string text;
    for (int64_t id : ids) {
      if (id == 2) text += "</s>";
      if (id >= 3) text.push_back(static_cast<char>(id - 3));
    }
    return text;
  }
  int64_t vocab_size() const override { return 259; }
};

}  // namespace peft::test
