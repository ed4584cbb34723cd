// Crash-safe file writing: content goes to a temporary file beside the target, which is flushed, fsynced and
// renamed over the target; the directory is then fsynced. Readers see the old file or the new, never a part.
#pragma once

#include <cstddef>
#include <string>

namespace peft {

// Streaming form: write() any number of times, then commit(). Destroying it uncommitted removes the
// temporary file and leaves any existing file at `path` untouched.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path);  // throws peft::Error when the temporary cannot be created
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t size);  // throws peft::Error (e.g. disk full) naming the path
  void commit();                              // flush, fsync, rename, fsync the directory

 private:
  std::string path_;
  std::string temporary_path_;
  int fd_ = -1;
  bool committed_ = false;
};

// One-shot form. Throws peft::Error naming the path when any step fails.
void write_file_atomic(const std::string& path, const std::string& contents);

// Makes renames and creations inside `directory` durable. Throws peft::Error; a filesystem that cannot fsync a
// directory (EINVAL) is not an error.
void fsync_directory(const std::string& directory);

// Creates `directory` and its parents if needed; throws peft::Error when that is impossible.
void ensure_directory(const std::string& directory);

}  // namespace peft
