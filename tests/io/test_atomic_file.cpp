// AtomicFile: the committed file appears whole or not at all, failures (genuine ones, even for root) leave the
// previous file intact and no temporary behind.
#include "core/error.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <filesystem>

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

namespace fs = std::filesystem;
using namespace peft;

namespace {

std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// Caps the size of any file this process writes (RLIMIT_FSIZE) so writes fail with EFBIG, which root cannot
// bypass; SIGXFSZ is ignored meanwhile so the failure is an error return, not a signal.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    getrlimit(RLIMIT_FSIZE, &saved_);
    previous_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    rlimit limit = saved_;
    limit.rlim_cur = bytes;
    setrlimit(RLIMIT_FSIZE, &limit);
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &saved_);
    std::signal(SIGXFSZ, previous_handler_);
  }

 private:
  rlimit saved_{};
  void (*previous_handler_)(int) = nullptr;
};

class AtomicFileTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = test::temp_dir("atomic"); }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

}  // namespace

TEST_F(AtomicFileTest, WritesFileAndLeavesNoTemporary) {
  std::string path = dir_ + "/out.txt";
  write_file_atomic(path, "hello\n");
  EXPECT_EQ(test::read_text(path), "hello\n");
  EXPECT_EQ(entries(dir_), std::vector<std::string>{"out.txt"});
}

TEST_F(AtomicFileTest, ReplacesExistingFile) {
  std::string path = test::write_text(dir_ + "/out.txt", "old contents that are longer");
  write_file_atomic(path, "new");
  EXPECT_EQ(test::read_text(path), "new");
  EXPECT_EQ(entries(dir_), std::vector<std::string>{"out.txt"});
}

TEST_F(AtomicFileTest, StreamsManyWrites) {
  std::string path = dir_ + "/big.bin";
  std::string chunk(1 << 20, 'x');
  std::string expected;
  {
    AtomicFile file(path);
    for (int i = 0; i < 5; ++i) {
      chunk[0] = static_cast<char>('0' + i);
      file.write(chunk.data(), chunk.size());
      expected += chunk;
    }
    file.write("", 0);
    EXPECT_FALSE(fs::exists(path));  // nothing visible before commit
    file.commit();
  }
  EXPECT_EQ(test::read_text(path), expected);
}

TEST_F(AtomicFileTest, TemporaryLivesBesideTargetUntilCommit) {
  std::string path = dir_ + "/out.txt";
  AtomicFile file(path);
  file.write("abc", 3);
  auto names = entries(dir_);
  ASSERT_EQ(names.size(), 1u);
  EXPECT_EQ(names[0].rfind("out.txt.tmp." + std::to_string(getpid()) + ".", 0), 0u) << names[0];
  file.commit();
  EXPECT_EQ(entries(dir_), std::vector<std::string>{"out.txt"});
}

TEST_F(AtomicFileTest, CreatesFileWithMode0644) {
  mode_t mask = umask(022);
  std::string path = dir_ + "/mode.txt";
  write_file_atomic(path, "x");
  umask(mask);
  struct stat status {};
  ASSERT_EQ(stat(path.c_str(), &status), 0);
  EXPECT_EQ(status.st_mode & 0777, 0644u);
}

TEST_F(AtomicFileTest, UncommittedFileIsDiscarded) {
  std::string path = test::write_text(dir_ + "/out.txt", "previous");
  {
    AtomicFile file(path);
    file.write("partial", 7);
  }
  EXPECT_EQ(test::read_text(path), "previous");
  EXPECT_EQ(entries(dir_), std::vector<std::string>{"out.txt"});
}

TEST_F(AtomicFileTest, TwoWritersOfOnePathDoNotCollide) {
  std::string path = dir_ + "/out.txt";
  AtomicFile first(path), second(path);
  first.write("1", 1);
  second.write("2", 1);
  first.commit();
  second.commit();
  EXPECT_EQ(test::read_text(path), "2");
  EXPECT_EQ(entries(dir_), std::vector<std::string>{"out.txt"});
}

TEST_F(AtomicFileTest, MissingParentDirectoryFailsClearly) {
  std::string path = dir_ + "/no/such/dir/out.txt";
  try {
    AtomicFile file(path);
    FAIL() << "created a file in a missing directory";
  } catch (const Error& e) {
    std::string message = e.what();
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find("No such file or directory"), std::string::npos) << message;
  }
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(AtomicFileTest, FailedRenameLeavesTargetAndNoTemporary) {
  // The target is an existing non-empty directory, so rename(2) fails even for root.
  std::string path = dir_ + "/target";
  test::write_text(path + "/keep.txt", "kept");
  try {
    write_file_atomic(path, "new contents");
    FAIL() << "renamed a file over a directory";
  } catch (const Error& e) {
    std::string message = e.what();
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find("renaming"), std::string::npos) << message;
  }
  EXPECT_EQ(test::read_text(path + "/keep.txt"), "kept");
  EXPECT_EQ(entries(dir_), std::vector<std::string>{"target"});
}

TEST_F(AtomicFileTest, FailedWriteLeavesPreviousFileAndNoTemporary) {
  std::string path = test::write_text(dir_ + "/out.bin", "previous");
  std::string big(1 << 16, 'x');
  try {
    FileSizeLimit limit(4096);
    AtomicFile file(path);
    file.write(big.data(), big.size());  // a partial write to the limit, then EFBIG
    file.commit();
    FAIL() << "wrote past RLIMIT_FSIZE";
  } catch (const Error& e) {
    std::string message = e.what();
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find("File too large"), std::string::npos) << message;
  }
  EXPECT_EQ(test::read_text(path), "previous");
  EXPECT_EQ(entries(dir_), std::vector<std::string>{"out.bin"});
}

TEST_F(AtomicFileTest, FailedSafetensorsSaveLeavesPreviousFile) {
  std::string path = dir_ + "/model.safetensors";
  safetensors::save(path, {{"w", torch::ones({4})}});
  const std::string before = test::read_text(path);
  try {
    FileSizeLimit limit(4096);
    safetensors::save(path, {{"a", torch::zeros({8})}, {"w", torch::zeros({100000})}});
    FAIL() << "saved past RLIMIT_FSIZE";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  EXPECT_EQ(test::read_text(path), before);
  EXPECT_EQ(entries(dir_), std::vector<std::string>{"model.safetensors"});
  EXPECT_TRUE(torch::equal(safetensors::File::open(path)->tensor("w"), torch::ones({4})));
}

TEST_F(AtomicFileTest, CommitTwiceAndWriteAfterCommitThrow) {
  AtomicFile file(dir_ + "/out.txt");
  file.write("a", 1);
  file.commit();
  EXPECT_THROW(file.commit(), Error);
  EXPECT_THROW(file.write("b", 1), Error);
  EXPECT_EQ(test::read_text(dir_ + "/out.txt"), "a");
}

TEST_F(AtomicFileTest, RelativePathInCurrentDirectory) {
  fs::path saved = fs::current_path();
  fs::current_path(dir_);
  write_file_atomic("relative.txt", "r");
  fs::current_path(saved);
  EXPECT_EQ(test::read_text(dir_ + "/relative.txt"), "r");
}

TEST_F(AtomicFileTest, EnsureDirectoryCreatesParents) {
  std::string nested = dir_ + "/a/b/c";
  ensure_directory(nested);
  EXPECT_TRUE(fs::is_directory(nested));
  ensure_directory(nested);  // existing is fine
}

TEST_F(AtomicFileTest, EnsureDirectoryFailsUnderAFile) {
  std::string file = test::write_text(dir_ + "/file", "x");
  for (const std::string& target : {file, file + "/sub"}) {
    try {
      ensure_directory(target);
      FAIL() << "created " << target;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("cannot create directory " + target), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(ensure_directory(""), Error);
}
