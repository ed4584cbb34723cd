#include "io/sentencepiece_tokenizer.h"

#include <dlfcn.h>
#include <unistd.h>

#include <filesystem>

#include "build_paths.h"
#include "core/error.h"
#include "io/sentencepiece_shim/sentencepiece_c_api.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PEFT_ADDRESS_SANITIZER 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define PEFT_ADDRESS_SANITIZER 1
#endif

namespace peft {
namespace {

// Loads the shim with its own symbol scope (see sentencepiece_c_api.h). AddressSanitizer's runtime aborts on
// RTLD_DEEPBIND, so a sanitized build (PEFT_SANITIZE, which leaves the shim uninstrumented) gives the shim a link
// namespace of its own instead: as isolated, and the C interface passes only plain buffers across.
void* open_isolated(const std::string& path) {
#ifdef PEFT_ADDRESS_SANITIZER
  return dlmopen(LM_ID_NEWLM, path.c_str(), RTLD_NOW | RTLD_LOCAL);
#else
  return dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
#endif
}

// The functions of the shim library, resolved once per process.
struct SentencePieceApi {
  decltype(&peft_spm_load) load;
  decltype(&peft_spm_free) free;
  decltype(&peft_spm_vocab_size) vocab_size;
  decltype(&peft_spm_pad_id) pad_id;
  decltype(&peft_spm_encode) encode;
  decltype(&peft_spm_decode) decode;
};

void* open_shim(std::string& errors) {
  // The build tree's copy, then one next to the running executable (an installed layout).
  std::vector<std::string> candidates = {PEFT_SENTENCEPIECE_LIBRARY};
  std::error_code error;
  auto executable = std::filesystem::read_symlink("/proc/self/exe", error);
  if (!error) candidates.push_back((executable.parent_path() / "libpeft_sentencepiece.so").string());
  for (const auto& path : candidates) {
    if (void* library = open_isolated(path)) return library;
    const char* message = dlerror();
    errors += (errors.empty() ? "" : "; ") + std::string(message ? message : path);
  }
  return nullptr;
}

const SentencePieceApi& api() {
  static const SentencePieceApi loaded = [] {
    std::string errors;
    void* library = open_shim(errors);
    check(library != nullptr, "cannot load the SentencePiece support library (" + errors + ")");
    auto symbol = [&](const char* name) {
      void* address = dlsym(library, name);
      check(address != nullptr, std::string("SentencePiece support library lacks ") + name);
      return address;
    };
    SentencePieceApi table;
    table.load = reinterpret_cast<decltype(table.load)>(symbol("peft_spm_load"));
    table.free = reinterpret_cast<decltype(table.free)>(symbol("peft_spm_free"));
    table.vocab_size = reinterpret_cast<decltype(table.vocab_size)>(symbol("peft_spm_vocab_size"));
    table.pad_id = reinterpret_cast<decltype(table.pad_id)>(symbol("peft_spm_pad_id"));
    table.encode = reinterpret_cast<decltype(table.encode)>(symbol("peft_spm_encode"));
    table.decode = reinterpret_cast<decltype(table.decode)>(symbol("peft_spm_decode"));
    return table;
  }();
  return loaded;
}

}  // namespace

SentencePieceTokenizer::SentencePieceTokenizer(const std::string& file) : file_(file) {
  char error[512] = {0};
  handle_ = api().load(file.c_str(), error, sizeof(error));
  check(handle_ != nullptr, "cannot load tokenizer " + file + ": " + error);
  vocab_size_ = api().vocab_size(handle_);
  pad_id_ = api().pad_id(handle_);
}

SentencePieceTokenizer::~SentencePieceTokenizer() {
  if (handle_) api().free(handle_);
}

std::vector<int64_t> SentencePieceTokenizer::encode(const std::string& text) const {
  // Text is at most a few bytes per id, so one call usually suffices; the second call covers the rest.
  std::vector<int32_t> ids(text.size() + 16);
  int64_t count = api().encode(handle_, text.data(), text.size(), ids.data(), static_cast<int64_t>(ids.size()));
  check(count >= 0, "SentencePiece failed to encode text with " + file_);
  if (count > static_cast<int64_t>(ids.size())) {
    ids.resize(static_cast<size_t>(count));
    api().encode(handle_, text.data(), text.size(), ids.data(), count);
  }
  return std::vector<int64_t>(ids.begin(), ids.begin() + count);
}

std::string SentencePieceTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::vector<int32_t> valid;
  for (int64_t id : ids) {
    if (id >= 0 && id < vocab_size_) valid.push_back(static_cast<int32_t>(id));
  }
  std::string text(valid.size() * 8 + 16, '\0');
  int64_t length = api().decode(handle_, valid.data(), static_cast<int64_t>(valid.size()), text.data(),
                                static_cast<int64_t>(text.size()));
  check(length >= 0, "SentencePiece failed to decode ids with " + file_);
  if (length > static_cast<int64_t>(text.size())) {
    text.resize(static_cast<size_t>(length));
    api().decode(handle_, valid.data(), static_cast<int64_t>(valid.size()), text.data(), length);
  }
  text.resize(static_cast<size_t>(length));
  return text;
}

}  // namespace peft
