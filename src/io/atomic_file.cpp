#include "io/atomic_file.h"

#include "core/error.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace peft {

namespace {

// Distinguishes temporaries of several AtomicFiles for the same path within one process.
std::atomic<unsigned long> temporary_counter{0};

std::string errno_text(int error) { return std::strerror(error); }

std::string parent_directory(const std::string& path) {
  fs::path parent = fs::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

// Makes the rename itself durable.
void fsync_parent(const std::string& directory, const std::string& path) {
  try {
    fsync_directory(directory);
  } catch (const Error& e) {
    throw Error("cannot write " + path + ": " + e.what());
  }
}

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  check(!path_.empty(), "cannot write a file with an empty path");
  temporary_path_ = path_ + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(temporary_counter++);
  fd_ = ::open(temporary_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw Error("cannot write " + path_ + ": cannot create temporary file " + temporary_path_ + ": " +
                errno_text(errno));
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temporary_path_.c_str());  // ENOENT after a failed commit is fine
}

void AtomicFile::write(const void* data, size_t size) {
  check(fd_ >= 0, "cannot write " + path_ + ": the file was already committed or failed to commit");
  const char* bytes = static_cast<const char*>(data);
  while (size > 0) {
    // Linux transfers at most ~2 GiB per call; larger requests just come back partial.
    ssize_t written = ::write(fd_, bytes, std::min<size_t>(size, size_t{1} << 30));
    if (written < 0) {
      if (errno == EINTR) continue;
      throw Error("cannot write " + path_ + " (temporary " + temporary_path_ + "): " + errno_text(errno));
    }
    if (written == 0)
      throw Error("cannot write " + path_ + " (temporary " + temporary_path_ + "): write made no progress");
    bytes += written;
    size -= static_cast<size_t>(written);
  }
}

void AtomicFile::commit() {
  check(fd_ >= 0 && !committed_, "cannot commit " + path_ + ": it was already committed or failed to commit");
  if (::fsync(fd_) != 0) throw Error("cannot write " + path_ + ": fsync failed: " + errno_text(errno));
  int fd = fd_;
  fd_ = -1;
  // close() can report deferred write errors (e.g. on NFS); a failure here means the data may be lost.
  if (::close(fd) != 0) throw Error("cannot write " + path_ + ": close failed: " + errno_text(errno));
  if (::rename(temporary_path_.c_str(), path_.c_str()) != 0)
    throw Error("cannot write " + path_ + ": renaming " + temporary_path_ + " over it failed: " + errno_text(errno));
  committed_ = true;
  fsync_parent(parent_directory(path_), path_);
}

void write_file_atomic(const std::string& path, const std::string& contents) {
  AtomicFile file(path);
  file.write(contents.data(), contents.size());
  file.commit();
}

void fsync_directory(const std::string& directory) {
  int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot open directory " + directory + " to fsync it: " + errno_text(errno));
  int result = ::fsync(fd);
  int error = errno;
  ::close(fd);
  if (result != 0 && error != EINVAL) throw Error("fsync of directory " + directory + " failed: " + errno_text(error));
}

void ensure_directory(const std::string& directory) {
  check(!directory.empty(), "cannot create a directory with an empty path");
  std::error_code error;
  fs::create_directories(directory, error);
  if (error) throw Error("cannot create directory " + directory + ": " + error.message());
  // create_directories reports success for an existing non-directory on some standard libraries.
  if (!fs::is_directory(directory, error))
    throw Error("cannot create directory " + directory + ": the path exists and is not a directory");
}

}  // namespace peft
