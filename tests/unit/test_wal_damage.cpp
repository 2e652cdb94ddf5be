// The write-ahead log's recovery of damaged segments: torn tails are cut,
// corruption is reported naming the file and offset, never skipped.

#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "runtime/error.hpp"
#include "runtime/wal/format.hpp"
#include "runtime/wal/wal.hpp"
#include "tests/support/helpers.hpp"
#include "tests/unit/wal_tests.hpp"

using namespace sluice;
using namespace sluice::test;
namespace fs = std::filesystem;

// -- torn tails ---------------------------------------------------------------

TEST_CASE("a torn last record is cut at recovery and reported and the log "
          "takes appends again",
          "[wal]") {
  test::temp_dir tmp{"sluice-wal"};
  auto dir = tmp.path();
  std::vector<record> written;
  {
    auto w = open_writer(dir);
    written = append_many(*w, 5, 1000);
  }
  auto last = written.back().first;
  auto path = dir + "/" + last.segment;
  uint64_t cut_to = 0;
  SECTION("torn in the middle of the payload") {
    cut_to = last.offset + wal::frame_header_size + last.length / 2;
  }
  SECTION("torn in the middle of the header") {
    cut_to = last.offset + 4;
  }
  SECTION("torn right after the header") {
    cut_to = last.offset + wal::frame_header_size;
  }
  SECTION("torn one byte short") {
    cut_to = end_of(last) - 1;
  }
  fs::resize_file(path, cut_to);
  auto got = recover_all(dir);
  REQUIRE(got.report);
  CHECK(got.report->records == 4);
  REQUIRE(got.report->cut.size() == 1);
  CHECK_THAT(got.report->cut[0], Catch::Contains(path));
  CHECK_THAT(got.report->cut[0],
             Catch::Contains("offset " + std::to_string(last.offset)));
  CHECK(fs::file_size(path) == last.offset);
  written.pop_back();
  CHECK(got.records == written);
  auto torn = wal::read(dir, last);
  REQUIRE_FALSE(torn);
  CHECK(has_code(torn.error(), errc::corrupt_data));
  // A second recovery finds a clean log.
  auto again = recover_all(dir);
  REQUIRE(again.report);
  CHECK(again.report->cut.empty());
  CHECK(again.records == written);
  // And a new writer's records follow.
  auto w = open_writer(dir);
  auto h = append(*w, 0, "after the cut");
  REQUIRE(h);
  CHECK(read_back(dir, *h) == "after the cut");
  auto after = recover_all(dir);
  REQUIRE(after.report);
  CHECK(after.report->records == 5);
  CHECK(after.records.back().second == "after the cut");
}

TEST_CASE("a zero-filled tail is cut at recovery", "[wal]") {
  test::temp_dir tmp{"sluice-wal"};
  auto dir = tmp.path();
  std::vector<record> written;
  {
    auto w = open_writer(dir);
    written = append_many(*w, 3, 500);
  }
  auto last = written.back().first;
  auto path = dir + "/" + last.segment;
  uint64_t good_end = 0;
  SECTION("zeros after the last record, as a preallocating file system "
          "leaves them") {
    append_bytes(path, std::string(8192, '\0'));
    good_end = end_of(last);
  }
  SECTION("the last record's payload zeroed, as a page that never reached "
          "the disk") {
    fs::resize_file(path, last.offset + wal::frame_header_size + 100);
    fs::resize_file(path, end_of(last) + 4096);
    written.pop_back();
    good_end = last.offset;
  }
  auto got = recover_all(dir);
  REQUIRE(got.report);
  REQUIRE(got.report->cut.size() == 1);
  CHECK_THAT(got.report->cut[0],
             Catch::Contains("offset " + std::to_string(good_end)));
  CHECK(got.records == written);
  CHECK(fs::file_size(path) == good_end);
}

// -- corruption
// -----------------------------------------------------------------

TEST_CASE("a flipped byte in a middle record is corruption named by file and "
          "offset and only that record stops reading",
          "[wal]") {
  test::temp_dir tmp{"sluice-wal"};
  auto dir = tmp.path();
  std::vector<record> written;
  {
    auto w = open_writer(dir);
    written = append_many(*w, 5, 100);
  }
  auto middle = written[2].first;
  auto path = dir + "/" + middle.segment;
  auto size_before = fs::file_size(path);
  SECTION("in the payload") {
    flip_byte(path, middle.offset + wal::frame_header_size + 50);
  }
  SECTION("in the length") {
    flip_byte(path, middle.offset + wal::frame_length_offset);
  }
  SECTION("in the length, making it run past the end of the file") {
    flip_byte(path, middle.offset + wal::frame_length_offset + 2);
  }
  SECTION("in the CRC") {
    flip_byte(path, middle.offset + wal::frame_crc_offset + 1);
  }
  SECTION("in the type") {
    flip_byte(path, middle.offset + wal::frame_type_offset);
  }
  auto got = recover_all(dir);
  REQUIRE_FALSE(got.report);
  CHECK(has_code(got.report.error(), errc::corrupt_data));
  CHECK(mentions(got.report.error(), path));
  CHECK(
      mentions(got.report.error(), "offset " + std::to_string(middle.offset)));
  // The records before it were delivered; nothing after it was skipped to.
  CHECK(got.records == std::vector<record>{written[0], written[1]});
  // Recovery never cuts what is not a torn tail.
  CHECK(fs::file_size(path) == size_before);
  auto bad = wal::read(dir, middle);
  REQUIRE_FALSE(bad);
  CHECK(has_code(bad.error(), errc::corrupt_data));
  CHECK(mentions(bad.error(), path));
  CHECK(mentions(bad.error(), "offset " + std::to_string(middle.offset)));
  for (auto i : {0, 1, 3, 4})
    CHECK(read_back(dir, written[i].first) == written[i].second);
}

TEST_CASE("records larger than the scan window are told apart as torn tails "
          "or corruption",
          "[wal]") {
  // Recovery reads 1 MiB windows: 3 MiB records make every check cross them.
  test::temp_dir tmp{"sluice-wal"};
  auto dir = tmp.path();
  std::vector<record> written;
  {
    auto w = open_writer(dir);
    written = append_many(*w, 3, 3u << 20);
  }
  auto path = dir + "/" + written[0].first.segment;
  SECTION("a damaged middle record is corruption") {
    auto middle = written[1].first;
    flip_byte(path, middle.offset + wal::frame_header_size + (2u << 20));
    auto got = recover_all(dir);
    REQUIRE_FALSE(got.report);
    CHECK(has_code(got.report.error(), errc::corrupt_data));
    CHECK(mentions(got.report.error(),
                   "offset " + std::to_string(middle.offset)));
    CHECK(mentions(got.report.error(),
                   "valid record at offset " +
                       std::to_string(written[2].first.offset)));
    CHECK(got.records.size() == 1);
  }
  SECTION("the last record torn two windows into its payload is cut") {
    auto last = written[2].first;
    fs::resize_file(path, last.offset + wal::frame_header_size + (2u << 20));
    auto got = recover_all(dir);
    REQUIRE(got.report);
    CHECK(got.report->records == 2);
    CHECK(got.report->cut.size() == 1);
    CHECK(fs::file_size(path) == last.offset);
  }
}

TEST_CASE("a bad segment header is corruption but a torn one is removed",
          "[wal]") {
  test::temp_dir tmp{"sluice-wal"};
  auto dir = tmp.path();
  std::vector<record> written;
  {
    auto w = open_writer(dir, 100);
    written = append_many(*w, 3, 100, 0);
  }
  auto path = dir + "/" + written[0].first.segment;
  SECTION("a wrong magic") {
    flip_byte(path, 0);
    auto got = recover_all(dir);
    REQUIRE_FALSE(got.report);
    CHECK(has_code(got.report.error(), errc::corrupt_data));
    CHECK(mentions(got.report.error(), path));
    CHECK(mentions(got.report.error(), "magic"));
    CHECK(mentions(got.report.error(), "offset 0"));
    auto bad = wal::read(dir, written[0].first);
    REQUIRE_FALSE(bad);
    CHECK(has_code(bad.error(), errc::corrupt_data));
  }
  SECTION("a damaged version") {
    flip_byte(path, 9);
    auto got = recover_all(dir);
    REQUIRE_FALSE(got.report);
    CHECK(has_code(got.report.error(), errc::corrupt_data));
    CHECK(mentions(got.report.error(), path));
  }
  SECTION("a later segment whose header never reached the disk") {
    auto header = test::read_file(path).substr(0, wal::segment_header_size);
    test::write_file(dir + "/log-100-200", header.substr(0, 7));
    test::write_file(dir + "/log-200-300", "");
    test::write_file(dir + "/log-300-400", std::string(4096, '\0'));
    auto got = recover_all(dir);
    REQUIRE(got.report);
    CHECK(got.records == written);
    CHECK(got.report->cut.size() == 3);
    CHECK(wal::segments(dir) == std::vector<std::string>{"log-0-100"});
  }
  SECTION("a short header that is not a prefix of a valid one") {
    test::write_file(dir + "/log-100-200", "garbage");
    auto got = recover_all(dir);
    REQUIRE_FALSE(got.report);
    CHECK(has_code(got.report.error(), errc::corrupt_data));
    CHECK(mentions(got.report.error(), dir + "/log-100-200"));
  }
}
