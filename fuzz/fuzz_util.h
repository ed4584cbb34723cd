// Shared by the fuzz targets. The readers under test take paths, so every input is first written to a file in a
// scratch directory private to this process, removed at exit: <pid> under $PEFT_FUZZ_SCRATCH when set
// (scripts/fuzz.sh sets it, and removes it after a crash too), else /dev/shm/peft-fuzz-<pid> (in memory).
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>

#include "core/error.h"

namespace peft::fuzz {

inline const std::string& scratch_dir() {
  // Never destroyed: the exit handler that removes the directory runs after static destructors.
  static const std::string* dir = [] {
    const char* parent = std::getenv("PEFT_FUZZ_SCRATCH");
    std::filesystem::path path =
        parent ? std::filesystem::path(parent) / std::to_string(::getpid())
               : (std::filesystem::is_directory("/dev/shm") ? std::filesystem::path("/dev/shm")
                                                            : std::filesystem::temp_directory_path()) /
                     ("peft-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(path);
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(scratch_dir(), ignored);
    });
    return new std::string(path.string());
  }();
  return *dir;
}

// Writes `size` bytes to `path` (replacing it) and returns the path; aborts when the write fails, since every
// later result would be meaningless.
inline std::string write_input(const std::string& path, const uint8_t* data, size_t size) {
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (!file || (size > 0 && std::fwrite(data, 1, size, file) != size) || std::fclose(file) != 0) {
    std::perror(path.c_str());
    std::abort();
  }
  return path;
}

// Runs `read`: true when it succeeds, false when it throws peft::Error, the expected outcome for bad input. That
// error's message must be one line (no line break quoted from the input): otherwise this aborts. Any other
// exception propagates to libFuzzer, which reports it as a finding.
inline bool reads(const std::function<void()>& read) {
  try {
    read();
    return true;
  } catch (const peft::Error& error) {
    if (std::strpbrk(error.what(), "\n\r")) {
      std::fprintf(stderr, "peft::Error message of more than one line: %s\n", error.what());
      std::abort();
    }
    return false;
  }
}

}  // namespace peft::fuzz
