// Helpers shared by the test binaries.
#pragma once

#include <functional>
#include <optional>
#include <string>

namespace peft::test {

// The repository root and the build directory holding the executables (compiled in; the environment variables
// PEFT_SOURCE_DIR / PEFT_BINARY_DIR override them).
std::string source_dir();
std::string binary_dir();

// tests/fixtures/<relative>.
std::string fixture(const std::string& relative);

// ../shared/data when it exists next to the repository, else nullopt (tests then GTEST_SKIP()).
std::optional<std::string> shared_data_dir();

// stories260K's tokenizer.model: the repository's copy (third_party/) when present, else the shared one.
std::optional<std::string> stories_tokenizer();

// A loopback TCP port nobody listens on now (the kernel's pick for port 0), for a process group's rendezvous.
int free_tcp_port();

// A fresh empty directory under the system temp dir, unique per call.
std::string temp_dir(const std::string& tag);

// Writes `contents` to `path` (creating parents); returns path.
std::string write_text(const std::string& path, const std::string& contents);
std::string read_text(const std::string& path);

// The message of the peft::Error `action` throws, or "(no error)".
std::string error_of(const std::function<void()>& action);

// Runs a shell command, returning its exit status and combined stdout+stderr.
struct CommandResult {
  int exit_code;
  std::string output;
};
CommandResult run_command(const std::string& command);

}  // namespace peft::test
