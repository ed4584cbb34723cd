// A plain C interface over libsentencepiece, built as its own shared library (peft_sentencepiece) and loaded
// with dlopen(RTLD_LOCAL | RTLD_DEEPBIND).
//
// Why: Debian's libsentencepiece exports the symbols of the protobuf-lite copy built into it, and Debian's
// LibTorch loads the system libprotobuf (through libonnx_proto). Linked into one executable, the two sets of
// symbols interpose and the process crashes in protobuf's static initialisers before main(). Loaded locally
// with deep binding, sentencepiece resolves to its own copy and stays out of the global symbol scope.
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Returns a handle, or NULL with a message in `error` (NUL-terminated, truncated to error_size).
void* peft_spm_load(const char* path, char* error, size_t error_size);
void peft_spm_free(void* handle);
int32_t peft_spm_vocab_size(void* handle);
int32_t peft_spm_pad_id(void* handle);  // -1 when the model has no pad piece

// Encodes `text` (length bytes) without BOS/EOS. Returns the number of ids; writes at most capacity of them,
// so a caller with too small a buffer calls again with the returned size.
int64_t peft_spm_encode(void* handle, const char* text, size_t length, int32_t* ids, int64_t capacity);

// Decodes ids into `text`; returns the byte length of the decoded text (which may exceed capacity, as above).
int64_t peft_spm_decode(void* handle, const int32_t* ids, int64_t count, char* text, int64_t capacity);

#ifdef __cplusplus
}
#endif
