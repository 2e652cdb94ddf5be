// runtime/io/: the file helpers every durable writer shares, on real files
// in a temporary directory.

#include <catch2/catch.hpp>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/error.hpp"
#include "runtime/io/errors.hpp"
#include "runtime/io/files.hpp"
#include "runtime/io/unique_fd.hpp"
#include "tests/support/helpers.hpp"

using namespace sluice;
using sluice::test::temp_dir;
namespace fs = std::filesystem;

namespace {

std::string message(const caf::error& err) {
  return describe(err);
}

bool has_code(const caf::error& err, errc code) {
  return err && err.category() == error_category()
         && err.code() == static_cast<uint8_t>(code);
}

std::string bytes_of(const std::string& path) {
  return test::read_file(path);
}

std::set<std::string> names_in(const std::string& dir) {
  std::set<std::string> result;
  for (auto& e : fs::directory_iterator{dir})
    result.insert(e.path().filename().string());
  return result;
}

bool is_open(int fd) {
  return ::fcntl(fd, F_GETFD) != -1;
}

/// The exit status of a forked child running `body` (its return value is
/// the exit code): limits and signal dispositions set there never reach the
/// test process.
template <class F>
int in_child(F body) {
  auto pid = ::fork();
  if (pid == 0)
    ::_exit(body());
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

} // namespace

// -- errors -------------------------------------------------------------------

TEST_CASE("errno_text gives the system's text for an errno value",
          "[io]") {
  CHECK(io::errno_text(ENOENT) == "No such file or directory");
  CHECK(io::errno_text(ENOSPC) == "No space left on device");
  CHECK_FALSE(io::errno_text(123456).empty());
}

TEST_CASE("errno_text gives each thread its own text when threads ask at once",
          "[io]") {
  std::vector<int> codes{ENOENT, EACCES, ENOSPC, EFBIG};
  std::vector<std::string> expected;
  for (auto code : codes)
    expected.push_back(io::errno_text(code));
  std::vector<int> wrong(codes.size(), 0);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < codes.size(); ++i)
    threads.emplace_back([&, i] {
      for (int round = 0; round < 2000; ++round)
        if (io::errno_text(codes[i]) != expected[i])
          ++wrong[i];
    });
  for (auto& t : threads)
    t.join();
  CHECK(wrong == std::vector<int>(codes.size(), 0));
}

TEST_CASE("file_error is an io_failed error naming what failed and the path "
          "and the errno text",
          "[io]") {
  auto err = io::file_error("cannot open", "/some/file", ENOENT);
  CHECK(has_code(err, errc::io_failed));
  CHECK(explanation(err)
        == "cannot open /some/file: No such file or directory");
}

// -- descriptors --------------------------------------------------------------

TEST_CASE("unique_fd closes its descriptor when it goes and hands it over "
          "when moved or released",
          "[io]") {
  temp_dir tmp{"sluice-io"};
  test::write_file(tmp / "f", "x");
  int raw = -1;
  {
    io::unique_fd fd{::open((tmp / "f").c_str(), O_RDONLY | O_CLOEXEC)};
    REQUIRE(fd);
    raw = fd.get();
    io::unique_fd moved{std::move(fd)};
    CHECK_FALSE(fd);
    CHECK(moved.get() == raw);
    CHECK(is_open(raw));
  }
  CHECK_FALSE(is_open(raw));
  io::unique_fd fd{::open((tmp / "f").c_str(), O_RDONLY | O_CLOEXEC)};
  raw = fd.release();
  CHECK_FALSE(fd);
  CHECK(is_open(raw));
  ::close(raw);
  io::unique_fd closing{::open((tmp / "f").c_str(), O_RDONLY | O_CLOEXEC)};
  raw = closing.get();
  CHECK(closing.close() == 0);
  CHECK_FALSE(closing);
  CHECK_FALSE(is_open(raw));
  CHECK(closing.close() == 0);
}

TEST_CASE("write_all writes every byte it is given", "[io]") {
  temp_dir tmp{"sluice-io"};
  std::string content(3 * 1024 * 1024 + 7, 'z');
  io::unique_fd fd{::open((tmp / "f").c_str(),
                          O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
  REQUIRE(fd);
  CHECK(io::write_all(fd.get(), content.data(), content.size()) == 0);
  CHECK(io::write_all(fd.get(), nullptr, 0) == 0);
  REQUIRE(fd.close() == 0);
  CHECK(bytes_of(tmp / "f") == content);
  CHECK(io::write_all(-1, "x", 1) == EBADF);
}

// -- directories --------------------------------------------------------------

TEST_CASE("fsync_directory syncs a directory and names the path and the "
          "errno text when it cannot",
          "[io]") {
  temp_dir tmp{"sluice-io"};
  CHECK_FALSE(io::fsync_directory(tmp.path()));
  auto err = io::fsync_directory(tmp / "missing");
  REQUIRE(err);
  CHECK(has_code(err, errc::io_failed));
  CHECK_THAT(message(err), Catch::Contains(tmp / "missing")
                             && Catch::Contains("No such file or directory"));
  test::write_file(tmp / "plain", "x");
  err = io::fsync_directory(tmp / "plain");
  REQUIRE(err);
  CHECK_THAT(message(err), Catch::Contains(tmp / "plain")
                             && Catch::Contains("Not a directory"));
}

TEST_CASE("ensure_directory creates missing parents and refuses a regular "
          "file",
          "[io]") {
  temp_dir tmp{"sluice-io"};
  REQUIRE_FALSE(io::ensure_directory(tmp / "a/b/c"));
  CHECK(fs::is_directory(tmp / "a/b/c"));
  REQUIRE_FALSE(io::ensure_directory(tmp / "a/b/c"));
  test::write_file(tmp / "plain", "x");
  auto err = io::ensure_directory(tmp / "plain");
  REQUIRE(err);
  CHECK(has_code(err, errc::io_failed));
  CHECK_THAT(message(err), Catch::Contains(tmp / "plain"));
  err = io::ensure_directory(tmp / "plain/below");
  REQUIRE(err);
  CHECK_THAT(message(err), Catch::Contains(tmp / "plain"));
}

// -- atomic writes ------------------------------------------------------------

TEST_CASE("write_file_atomically replaces a file whole and leaves no temporary",
          "[checkpoint]") {
  temp_dir tmp{"sluice-ckpt"};
  auto path = tmp / "f";
  REQUIRE_FALSE(io::write_file_atomically(path, "old", 3));
  REQUIRE_FALSE(io::write_file_atomically(
    path, std::vector<std::string_view>{"ne", "", "w!"}));
  CHECK(bytes_of(path) == "new!");
  REQUIRE_FALSE(io::write_file_atomically(path, nullptr, 0));
  CHECK(bytes_of(path).empty());
  CHECK(names_in(tmp.path()) == std::set<std::string>{"f"});
  auto err = io::write_file_atomically(tmp / "missing/f", "x", 1);
  REQUIRE(err);
  CHECK_THAT(message(err), Catch::Contains(tmp / "missing/f"));
  REQUIRE_FALSE(io::ensure_directory(tmp / "a/b/c"));
  CHECK(fs::is_directory(tmp / "a/b/c"));
  REQUIRE_FALSE(io::ensure_directory(tmp / "a/b/c"));
}

TEST_CASE("an atomic write into a missing directory fails naming the path "
          "and the errno text",
          "[io]") {
  temp_dir tmp{"sluice-io"};
  auto err = io::write_file_atomically(tmp / "missing/f", "x", 1);
  REQUIRE(err);
  CHECK(has_code(err, errc::io_failed));
  CHECK_THAT(message(err), Catch::Contains(tmp / "missing/f")
                             && Catch::Contains("No such file or directory"));
  CHECK(names_in(tmp.path()).empty());
}

TEST_CASE("an atomic write that cannot replace its target leaves the target "
          "and no temporary file",
          "[io]") {
  temp_dir tmp{"sluice-io"};
  // A non-empty directory under the target name: the rename must fail.
  fs::create_directories(tmp / "f/inside");
  for (auto naming : {io::temporary_name::beside, io::temporary_name::hidden}) {
    auto err = io::write_file_atomically(tmp / "f", "new", 3, naming);
    REQUIRE(err);
    CHECK(has_code(err, errc::io_failed));
    CHECK_THAT(message(err), Catch::Contains("cannot rename")
                               && Catch::Contains(tmp / "f"));
    CHECK(names_in(tmp.path()) == std::set<std::string>{"f"});
    CHECK(fs::is_directory(tmp / "f/inside"));
  }
}

TEST_CASE("an atomic write names its temporary file beside the target or "
          "hidden as asked",
          "[io]") {
  temp_dir tmp{"sluice-io"};
  fs::create_directories(tmp / "f/inside");
  // The failed rename names the temporary file: its name is the only trace
  // a crash would leave.
  auto temporary_of = [&](io::temporary_name naming) {
    auto text = explanation(io::write_file_atomically(tmp / "f", "x", 1,
                                                      naming));
    auto from = text.find(tmp.path());
    auto to = text.find(" to ", from);
    REQUIRE(from != std::string::npos);
    REQUIRE(to != std::string::npos);
    return fs::path{text.substr(from, to - from)}.filename().string();
  };
  auto beside = temporary_of(io::temporary_name::beside);
  CHECK(beside.rfind("f.", 0) == 0);
  CHECK(io::is_temporary_file_name(beside));
  auto hidden = temporary_of(io::temporary_name::hidden);
  CHECK(hidden.rfind(".f.", 0) == 0);
  CHECK(io::is_temporary_file_name(hidden));
}

TEST_CASE("an atomic write that fails mid-way leaves the old content and no "
          "temporary file",
          "[io]") {
  temp_dir tmp{"sluice-io"};
  auto path = tmp / "f";
  REQUIRE_FALSE(io::write_file_atomically(path, "old", 3));
  std::string big(1024 * 1024, 'n');
  std::string why;
  // A file size limit of 64 KiB makes the write fail with EFBIG part way
  // through, as a full disk would.
  auto status = in_child([&] {
    std::signal(SIGXFSZ, SIG_IGN);
    rlimit small{64 * 1024, 64 * 1024};
    if (::setrlimit(RLIMIT_FSIZE, &small) != 0)
      return 3;
    auto err = io::write_file_atomically(path, big.data(), big.size());
    if (!err)
      return 1;
    auto text = explanation(err);
    return text.find(path) != std::string::npos
               && text.find(io::errno_text(EFBIG)) != std::string::npos
             ? 0
             : 2;
  });
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(bytes_of(path) == "old");
  CHECK(names_in(tmp.path()) == std::set<std::string>{"f"});
}

TEST_CASE("a writer killed at any moment leaves either the old or the new "
          "content",
          "[io]") {
  temp_dir tmp{"sluice-io"};
  auto path = tmp / "f";
  // Different sizes too: a torn file would show as a length or a mix.
  std::string first(300 * 1024, 'a');
  std::string second(200 * 1024, 'b');
  REQUIRE_FALSE(io::write_file_atomically(path, first.data(), first.size()));
  std::mt19937 rng{42};
  for (int round = 0; round < 10; ++round) {
    auto pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      for (uint64_t i = 0;; ++i) {
        auto& next = i % 2 == 0 ? second : first;
        if (io::write_file_atomically(path, next.data(), next.size()))
          ::_exit(1);
      }
    }
    // A random moment to kill at, not a wait for something to happen.
    std::this_thread::sleep_for(
      std::chrono::microseconds{std::uniform_int_distribution<int>{
        100, 20000}(rng)});
    ::kill(pid, SIGKILL);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    CHECK(WIFSIGNALED(status));
    auto content = bytes_of(path);
    CHECK((content == first || content == second));
    // Whatever else the kill left behind is a temporary file.
    for (auto& name : names_in(tmp.path()))
      if (name != "f")
        CHECK(io::is_temporary_file_name(name));
  }
}
