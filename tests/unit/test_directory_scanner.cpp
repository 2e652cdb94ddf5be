// The directory stream's scanner and file reader against real files in a
// fresh temporary directory.

#include <catch2/catch.hpp>

#include "tests/support/helpers.hpp"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "runtime/sources/directory_scanner.hpp"

namespace fs = std::filesystem;

using namespace std::chrono_literals;

namespace {

using sluice::test::temp_dir;

void write_file(const std::string& path, const std::string& content) {
  std::ofstream out{path, std::ios::binary | std::ios::trunc};
  REQUIRE(out);
  out << content;
  out.close();
  REQUIRE(out);
}

timespec ctime_of(const std::string& path) {
  struct stat st;
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  return st.st_ctim;
}

bool later(const timespec& x, const timespec& y) {
  return x.tv_sec != y.tv_sec ? x.tv_sec > y.tv_sec : x.tv_nsec > y.tv_nsec;
}

using sluice::test::wait_until;

/// Delivers a file the way producers should: written under a '_' name the
/// scanner ignores, then renamed into place. Returns its path.
std::string arrive(const temp_dir& dir, const std::string& name,
                   const std::string& content = "x\n") {
  auto staged = dir / ("_incoming-" + name);
  write_file(staged, content);
  auto path = dir / name;
  REQUIRE(::rename(staged.c_str(), path.c_str()) == 0);
  return path;
}

/// Like arrive(), but makes sure the file's change time is later than
/// `previous`'s: the kernel's clock for inode times is coarse, so two quick
/// renames can share a timestamp. chmod() sets the change time to now again.
std::string arrive_after(const temp_dir& dir, const std::string& name,
                         const std::string& previous) {
  auto path = arrive(dir, name);
  auto before = ctime_of(previous);
  REQUIRE(wait_until([&] {
    REQUIRE(::chmod(path.c_str(), 0644) == 0);
    return later(ctime_of(path), before);
  }));
  return path;
}

using paths = std::vector<std::string>;

std::set<std::string> as_set(const paths& xs) {
  return {xs.begin(), xs.end()};
}

} // namespace

// -- directory_scanner --------------------------------------------------------

TEST_CASE("directory scanner returns each new file once in arrival order",
          "[sources][directory]") {
  temp_dir dir;
  sluice::directory_scanner scanner{dir.path()};
  auto empty = scanner.scan();
  CHECK(empty.files.empty());
  CHECK(empty.problems.empty());
  // Names in reverse order, so sorting by name alone would get it wrong.
  auto c = arrive(dir, "c.txt");
  auto b = arrive_after(dir, "b.txt", c);
  auto a = arrive_after(dir, "a.txt", b);
  auto first = scanner.scan();
  CHECK(first.files == paths{c, b, a});
  CHECK(first.problems.empty());
  CHECK(scanner.scan().files.empty());
  auto z = arrive_after(dir, "0.txt", a);
  CHECK(scanner.scan().files == paths{z});
  CHECK(scanner.seen() == std::set<std::string>{a, b, c, z});
}

TEST_CASE("directory scanner orders files that arrived together by name",
          "[sources][directory]") {
  temp_dir dir;
  sluice::directory_scanner scanner{dir.path()};
  // Hard links share one inode and thus one change time.
  auto staged = dir / "_staged";
  write_file(staged, "shared\n");
  for (auto name : {"zeta", "alpha", "mid"})
    REQUIRE(::link(staged.c_str(), (dir / name).c_str()) == 0);
  REQUIRE(::unlink(staged.c_str()) == 0);
  CHECK(scanner.scan().files ==
        paths{dir / "alpha", dir / "mid", dir / "zeta"});
}

TEST_CASE("directory scanner ignores hidden and underscore names and "
          "directories but follows symlinks to files",
          "[sources][directory]") {
  temp_dir dir;
  temp_dir elsewhere;
  write_file(dir / ".hidden", "no\n");
  write_file(dir / "_in-progress", "no\n");
  REQUIRE(::mkdir((dir / "sub").c_str(), 0755) == 0);
  write_file(dir / "sub/inner.txt", "no\n");
  REQUIRE(::symlink((dir / "sub").c_str(), (dir / "to-dir").c_str()) == 0);
  // Opening a FIFO for reading would block until a writer comes: the
  // scanner must skip it rather than hang.
  REQUIRE(::mkfifo((dir / "pipe").c_str(), 0644) == 0);
  write_file(elsewhere / "target.txt", "yes\n");
  REQUIRE(::symlink((elsewhere / "target.txt").c_str(),
                    (dir / "linked").c_str()) == 0);
  auto plain = arrive(dir, "plain");
  sluice::directory_scanner scanner{dir.path()};
  auto res = scanner.scan();
  CHECK(as_set(res.files) == std::set<std::string>{dir / "linked", plain});
  CHECK(res.problems.empty());
}

TEST_CASE("directory scanner reports a dangling symlink once and returns it "
          "once it can be read",
          "[sources][directory]") {
  temp_dir dir;
  temp_dir elsewhere;
  auto late = dir / "late";
  auto target = elsewhere / "target.txt";
  REQUIRE(::symlink(target.c_str(), late.c_str()) == 0);
  auto ok = arrive(dir, "ok");
  sluice::directory_scanner scanner{dir.path()};
  auto first = scanner.scan();
  CHECK(first.files == paths{ok});
  CHECK(first.problems ==
        paths{"cannot read " + late + ": No such file or directory"});
  auto second = scanner.scan();
  CHECK(second.files.empty());
  CHECK(second.problems.empty()); // still unreadable, already reported
  SECTION("when a real file replaces the symlink") {
    arrive(dir, "late");
    auto res = scanner.scan();
    CHECK(res.files == paths{late});
    CHECK(res.problems.empty());
  }
  SECTION("when the target of the symlink appears") {
    write_file(target, "now\n");
    auto res = scanner.scan();
    CHECK(res.files == paths{late});
    CHECK(res.problems.empty());
  }
  CHECK(scanner.seen() == std::set<std::string>{ok, late});
  CHECK(scanner.scan().files.empty());
}

TEST_CASE("directory scanner reports an unreadable file again after it was "
          "removed and came back",
          "[sources][directory]") {
  temp_dir dir;
  auto broken = dir / "broken";
  REQUIRE(::symlink((dir / "_nowhere").c_str(), broken.c_str()) == 0);
  sluice::directory_scanner scanner{dir.path()};
  auto problem = "cannot read " + broken + ": No such file or directory";
  CHECK(scanner.scan().problems == paths{problem});
  REQUIRE(::unlink(broken.c_str()) == 0);
  CHECK(scanner.scan().problems.empty());
  REQUIRE(::symlink((dir / "_nowhere").c_str(), broken.c_str()) == 0);
  CHECK(scanner.scan().problems == paths{problem});
}

TEST_CASE("directory scanner forgets deleted files so a new file with the "
          "same name is returned again",
          "[sources][directory]") {
  temp_dir dir;
  sluice::directory_scanner scanner{dir.path()};
  auto a = arrive(dir, "a");
  CHECK(scanner.scan().files == paths{a});
  CHECK(scanner.seen() == std::set<std::string>{a});
  REQUIRE(::unlink(a.c_str()) == 0);
  CHECK(scanner.scan().files.empty());
  CHECK(scanner.seen().empty());
  arrive(dir, "a");
  CHECK(scanner.scan().files == paths{a});
}

TEST_CASE("directory scanner skips files marked as seen",
          "[sources][directory]") {
  temp_dir dir;
  auto a = arrive(dir, "a");
  auto b = arrive(dir, "b");
  sluice::directory_scanner scanner{dir.path()};
  scanner.mark_seen({a});
  CHECK(scanner.scan().files == paths{b});
  CHECK(scanner.seen() == std::set<std::string>{a, b});
}

TEST_CASE("directory scanner reports a missing directory once and recovers "
          "when it appears",
          "[sources][directory]") {
  temp_dir parent;
  auto dir = parent / "incoming";
  sluice::directory_scanner scanner{dir};
  auto problem = "cannot list " + dir + ": No such file or directory";
  auto first = scanner.scan();
  CHECK(first.files.empty());
  CHECK(first.problems == paths{problem});
  CHECK(scanner.scan().problems.empty());
  REQUIRE(::mkdir(dir.c_str(), 0755) == 0);
  write_file(dir + "/x", "x\n");
  auto found = scanner.scan();
  CHECK(found.files == paths{dir + "/x"});
  CHECK(found.problems.empty());
  // Gone again: reported again, and what was seen is kept, so a directory
  // that is only briefly unavailable does not make old files new.
  fs::remove_all(dir);
  CHECK(scanner.scan().problems == paths{problem});
  CHECK(scanner.seen() == std::set<std::string>{dir + "/x"});
}

TEST_CASE("directory scanner makes a relative directory absolute",
          "[sources][directory]") {
  temp_dir dir;
  REQUIRE(::mkdir((dir / "sub").c_str(), 0755) == 0);
  auto old_cwd = fs::current_path();
  fs::current_path(dir.path());
  auto here = fs::current_path().string(); // /tmp may be a symlink
  sluice::directory_scanner trailing_slash{"sub/"};
  sluice::directory_scanner dotted{"./sub"};
  fs::current_path(old_cwd);
  CHECK(trailing_slash.dir() == here + "/sub");
  CHECK(dotted.dir() == here + "/sub");
  // The directory was fixed at construction, whatever the cwd is now.
  write_file(dir / "sub/f", "f\n");
  CHECK(dotted.scan().files == paths{here + "/sub/f"});
}

// -- read_lines ---------------------------------------------------------------

TEST_CASE("read_lines splits lines and drops a trailing carriage return",
          "[sources][directory]") {
  temp_dir dir;
  auto read = [&](const std::string& content) {
    write_file(dir / "f", content);
    std::vector<std::string> out;
    sluice::read_lines(dir / "f", out);
    return out;
  };
  CHECK(read("one\r\ntwo\n\nthree\r") == paths{"one", "two", "", "three"});
  CHECK(read("a\nb\n") == paths{"a", "b"});
  CHECK(read("no newline") == paths{"no newline"});
  CHECK(read("") == paths{});
  CHECK(read("\n") == paths{""});
  CHECK(read("in\rside\n\r\n") == paths{"in\rside", ""});
  // Lines are appended to what is already there.
  std::vector<std::string> out{"kept"};
  sluice::read_lines(dir / "f", out);
  CHECK(out == paths{"kept", "in\rside", ""});
}

TEST_CASE("read_lines reads a file larger than its read buffer",
          "[sources][directory]") {
  temp_dir dir;
  paths expected;
  std::string content;
  for (size_t i = 0; i < 60000; ++i) {
    std::string line((i * 131) % 200, static_cast<char>('a' + i % 26));
    if (i == 30000)
      line.assign(3 * 1024 * 1024, 'L'); // longer than any one read
    content += line;
    content += i % 2 == 0 ? "\n" : "\r\n";
    expected.push_back(std::move(line));
  }
  write_file(dir / "big", content);
  paths out;
  sluice::read_lines(dir / "big", out);
  REQUIRE(out.size() == expected.size());
  CHECK(out == expected);
}

TEST_CASE("read_lines throws an error naming a file it cannot read",
          "[sources][directory]") {
  temp_dir dir;
  paths out{"kept"};
  auto missing = dir / "missing";
  CHECK_THROWS_AS(sluice::read_lines(missing, out), std::runtime_error);
  CHECK_THROWS_WITH(sluice::read_lines(missing, out),
                    "cannot read " + missing + ": No such file or directory");
  CHECK_THROWS_WITH(sluice::read_lines(dir.path(), out),
                    "cannot read " + dir.path() + ": Is a directory");
  CHECK(out == paths{"kept"});
}
