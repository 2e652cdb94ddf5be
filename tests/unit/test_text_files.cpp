#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "runtime/sinks/text_files.hpp"
#include "runtime/text_format.hpp"
#include "tests/support/helpers.hpp"

using namespace sluice;
namespace fs = std::filesystem;

namespace {

/// Every entry of `dir`, hidden ones included.
std::set<std::string> entries(const std::string& dir) {
  std::set<std::string> result;
  for (auto& e : fs::directory_iterator{dir})
    result.insert(e.path().filename().string());
  return result;
}

} // namespace

TEST_CASE("part file names have five digits at least", "[text_files]") {
  CHECK(part_file_name(0) == "part-00000");
  CHECK(part_file_name(3) == "part-00003");
  CHECK(part_file_name(99999) == "part-99999");
  CHECK(part_file_name(123456) == "part-123456");
}

TEST_CASE("batch directories follow Spark's prefix-time.suffix layout",
          "[text_files]") {
  CHECK(batch_dir("out/words", "", 1000) == "out/words-1000");
  CHECK(batch_dir("out/words", "txt", 1500) == "out/words-1500.txt");
  CHECK(batch_dir("/abs", "", 0) == "/abs-0");
}

TEST_CASE("a part file is written with its exact content and no temporary "
          "file",
          "[text_files]") {
  test::temp_dir tmp{"sluice-text"};
  auto dir = tmp / "out-1000";
  std::string content = "first line\nsecond\twith tab\n";
  content += '\0';
  content += "binary\n";
  write_part_file(dir, 3, content);
  CHECK(test::read_file(dir + "/part-00003") == content);
  CHECK(entries(dir) == std::set<std::string>{"part-00003"});
}

TEST_CASE("an empty partition is written as an empty file", "[text_files]") {
  test::temp_dir tmp{"sluice-text"};
  write_part_file(tmp.path(), 0, "");
  REQUIRE(fs::exists(tmp / "part-00000"));
  CHECK(fs::file_size(tmp / "part-00000") == 0);
  CHECK(entries(tmp.path()) == std::set<std::string>{"part-00000"});
}

TEST_CASE("a re-run replaces the part file so it exists once with the new "
          "content",
          "[text_files]") {
  test::temp_dir tmp{"sluice-text"};
  auto dir = tmp / "nested/deeper/out-2000";
  write_part_file(dir, 3, std::string(10000, 'a'));
  write_part_file(dir, 3, "short\n");
  write_part_file(dir, 4, "other partition\n");
  CHECK(test::read_file(dir + "/part-00003") == "short\n");
  CHECK(test::read_file(dir + "/part-00004") == "other partition\n");
  CHECK(entries(dir) == std::set<std::string>{"part-00003", "part-00004"});
}

TEST_CASE("a large partition is written completely", "[text_files]") {
  test::temp_dir tmp{"sluice-text"};
  std::string content;
  for (int i = 0; i < 200000; ++i)
    content += std::to_string(i) + "\n";
  write_part_file(tmp.path(), 12, content);
  CHECK(test::read_file(tmp / "part-00012") == content);
}

TEST_CASE("writing below a regular file fails naming the path", "[text_files]") {
  test::temp_dir tmp{"sluice-text"};
  auto file = tmp / "plain-file";
  test::write_file(file, "not a directory");
  SECTION("the parent is a regular file") {
    auto dir = file + "/out-1000";
    try {
      write_part_file(dir, 1, "x\n");
      FAIL("write_part_file succeeded below a regular file");
    } catch (const std::runtime_error& e) {
      CHECK_THAT(e.what(), Catch::Contains(dir));
    }
  }
  SECTION("the directory itself is a regular file") {
    try {
      write_part_file(file, 1, "x\n");
      FAIL("write_part_file succeeded into a regular file");
    } catch (const std::runtime_error& e) {
      CHECK_THAT(e.what(), Catch::Contains(file));
    }
  }
  // The file was not touched and nothing was left beside it.
  CHECK(test::read_file(file) == "not a directory");
  CHECK(entries(tmp.path()) == std::set<std::string>{"plain-file"});
}

TEST_CASE("a part file that cannot replace a directory fails and leaves no "
          "temporary file",
          "[text_files]") {
  test::temp_dir tmp{"sluice-text"};
  // part-00005 exists as a non-empty directory: the rename must fail.
  fs::create_directories(tmp / "part-00005/inside");
  try {
    write_part_file(tmp.path(), 5, "data\n");
    FAIL("write_part_file replaced a directory");
  } catch (const std::runtime_error& e) {
    CHECK_THAT(e.what(), Catch::Contains(tmp / "part-00005"));
  }
  CHECK(entries(tmp.path()) == std::set<std::string>{"part-00005"});
}

TEST_CASE("text format writes strings and numbers plainly", "[text_format]") {
  CHECK(to_text(std::string{"hello world"}) == "hello world");
  CHECK(to_text(std::string{}) == "");
  CHECK(to_text(int64_t{42}) == "42");
  CHECK(to_text(int32_t{-7}) == "-7");
  CHECK(to_text(uint64_t{18446744073709551615u}) == "18446744073709551615");
  CHECK(to_text(int8_t{-128}) == "-128");
  CHECK(to_text(1.5) == "1.5");
  CHECK(to_text(0.1) == "0.1");
  CHECK(to_text(-2.0) == "-2");
  CHECK(to_text(0.25f) == "0.25");
  CHECK(to_text(true) == "true");
  CHECK(to_text(false) == "false");
}

TEST_CASE("text format separates pair and tuple fields with tabs",
          "[text_format]") {
  CHECK(to_text(std::make_pair(std::string{"word"}, int64_t{3})) == "word\t3");
  CHECK(to_text(std::make_tuple(std::string{"a"}, 1, 2.5)) == "a\t1\t2.5");
  CHECK(to_text(std::make_tuple(7)) == "7");
  CHECK(to_text(std::tuple<>{}) == "");
  CHECK(to_text(std::make_pair(std::make_pair(1, 2), std::string{"x"})) == "1\t2\tx");
}

TEST_CASE("text format writes vectors in brackets and optionals as their "
          "value",
          "[text_format]") {
  CHECK(to_text(std::vector<int>{1, 2, 3}) == "[1, 2, 3]");
  CHECK(to_text(std::vector<int>{}) == "[]");
  CHECK(to_text(std::vector<std::string>{"a b", "c"}) == "[a b, c]");
  CHECK(to_text(std::optional<int>{5}) == "5");
  CHECK(to_text(std::optional<int>{}) == "");
  CHECK(to_text(std::make_pair(std::string{"k"}, std::vector<int64_t>{1, 2}))
        == "k\t[1, 2]");
  CHECK(to_text(std::vector<std::optional<int>>{1, std::nullopt, 3}) == "[1, , 3]");
  std::string out = "prefix:";
  append_text(out, std::make_pair(std::string{"w"}, 9));
  CHECK(out == "prefix:w\t9");
}
