#include "test_util.h"

#include "core/error.h"

#include "build_paths.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace peft::test {

std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

std::string source_dir() {
  const char* dir = std::getenv("PEFT_SOURCE_DIR");
  return dir ? dir : PEFT_SOURCE_DIR;
}

std::string binary_dir() {
  const char* dir = std::getenv("PEFT_BINARY_DIR");
  return dir ? dir : PEFT_BINARY_DIR;
}

std::string fixture(const std::string& relative) { return source_dir() + "/tests/fixtures/" + relative; }

std::optional<std::string> shared_data_dir() {
  fs::path candidate = fs::path(source_dir()).parent_path() / "shared" / "data";
  if (fs::is_directory(candidate)) return candidate.string();
  return std::nullopt;
}

std::optional<std::string> stories_tokenizer() {
  std::string local = source_dir() + "/third_party/stories260K-hf/tokenizer.model";
  if (fs::exists(local)) return local;
  if (auto shared = shared_data_dir()) {
    std::string path = *shared + "/stories260K-hf/tokenizer.model";
    if (fs::exists(path)) return path;
  }
  return std::nullopt;
}

std::string temp_dir(const std::string& tag) {
  static std::atomic<int> counter{0};
  fs::path dir = fs::temp_directory_path() /
                 ("peft-test-" + tag + "-" + std::to_string(getpid()) + "-" + std::to_string(counter++));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

std::string write_text(const std::string& path, const std::string& contents) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary);
  out << contents;
  return path;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

CommandResult run_command(const std::string& command) {
  std::string full = command + " 2>&1";
  FILE* pipe = popen(full.c_str(), "r");
  if (!pipe) return {-1, "popen failed"};
  std::string output;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) output.append(buffer.data(), n);
  int status = pclose(pipe);
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return {code, output};
}

int free_tcp_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  bool bound = fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
               getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  if (fd >= 0) close(fd);
  if (!bound) throw Error("cannot find a free TCP port on the loopback interface");
  return ntohs(address.sin_port);
}

}  // namespace peft::test
