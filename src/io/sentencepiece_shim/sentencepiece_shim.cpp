// The implementation behind sentencepiece_c_api.h; see there for why it is a separate shared library.
#include "io/sentencepiece_shim/sentencepiece_c_api.h"

#include <sentencepiece_processor.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

namespace {
sentencepiece::SentencePieceProcessor* processor(void* handle) {
  return static_cast<sentencepiece::SentencePieceProcessor*>(handle);
}
}  // namespace

extern "C" {

void* peft_spm_load(const char* path, char* error, size_t error_size) {
  auto* p = new sentencepiece::SentencePieceProcessor();
  auto status = p->Load(path);
  if (!status.ok()) {
    if (error && error_size > 0) {
      std::string message = status.ToString();
      size_t n = std::min(message.size(), error_size - 1);
      std::memcpy(error, message.data(), n);
      error[n] = '\0';
    }
    delete p;
    return nullptr;
  }
  return p;
}

void peft_spm_free(void* handle) { delete processor(handle); }

int32_t peft_spm_vocab_size(void* handle) { return processor(handle)->GetPieceSize(); }

int32_t peft_spm_pad_id(void* handle) { return processor(handle)->pad_id(); }

int64_t peft_spm_encode(void* handle, const char* text, size_t length, int32_t* ids, int64_t capacity) {
  std::vector<int> out;
  if (!processor(handle)->Encode(std::string(text, length), &out).ok()) return -1;
  for (int64_t i = 0; i < static_cast<int64_t>(out.size()) && i < capacity; ++i) ids[i] = out[i];
  return static_cast<int64_t>(out.size());
}

int64_t peft_spm_decode(void* handle, const int32_t* ids, int64_t count, char* text, int64_t capacity) {
  std::vector<int> in(ids, ids + count);
  std::string out;
  if (!processor(handle)->Decode(in, &out).ok()) return -1;
  std::memcpy(text, out.data(), static_cast<size_t>(std::min<int64_t>(capacity, static_cast<int64_t>(out.size()))));
  return static_cast<int64_t>(out.size());
}

}  // extern "C"
