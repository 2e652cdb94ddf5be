// The write-ahead log (runtime/wal/): its format, appends read back by handle
// and by recovery, segments rolling and deleted by time, and what it
// refuses. Damaged segments: test_wal_damage.cpp; a full disk:
// test_wal_full_disk.cpp.

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

// -- format
// ---------------------------------------------------------------------

TEST_CASE("crc32c matches the standard check value and masking round trips",
          "[wal]") {
  const char* digits = "123456789";
  CHECK(crc32c(digits, 9) == 0xE3069283u);
  CHECK(crc32c(digits, 0) == 0u);
  CHECK(crc32c(nullptr, 0) == 0u);
  CHECK(crc32c_extend(crc32c(digits, 4), digits + 4, 5) == 0xE3069283u);
  CHECK(crc32c_extend(0, digits, 9) == 0xE3069283u);
  for (uint32_t x : {0u, 1u, 0xE3069283u, 0xFFFFFFFFu, 0xa282ead8u}) {
    CHECK(crc32c_unmask(crc32c_mask(x)) == x);
    CHECK(crc32c_mask(x) != x);
  }
}

TEST_CASE("segment names carry their time range and only canonical names "
          "parse",
          "[wal]") {
  CHECK(wal::segment_name({1000, 61000}) == "log-1000-61000");
  auto range = wal::parse_segment_name("log-1000-61000");
  REQUIRE(range);
  CHECK(range->start_ms == 1000);
  CHECK(range->end_ms == 61000);
  for (auto bad :
       {"log-01-2", "log-5-5", "log-6-5", "log-a-b", "LOCK", "log-1-2.tmp",
        "log--1-5", "log-1", "log-", "xlog-1-2", "log-1-99999999999999999999"})
    CHECK_FALSE(wal::parse_segment_name(bad));
}

// -- writing and reading ------------------------------------------------------

TEST_CASE("records appended to a log read back by handle and by recovery in "
          "append order",
          "[wal]") {
  test::temp_dir tmp{"sluice-wal"};
  auto dir = tmp / "log";
  std::vector<record> written;
  {
    auto w = open_writer(dir, 60000, wal::fsync_policy::always);
    for (size_t i = 0; i < 200; ++i) {
      auto bytes = payload(i, (i * 37) % 5000); // i = 0: an empty record
      auto h = append(*w, 1000 + static_cast<int64_t>(i), bytes);
      REQUIRE(h);
      CHECK(h->length == bytes.size());
      written.emplace_back(*h, bytes);
    }
    CHECK(w->current_segment() == written.front().first.segment);
    CHECK_FALSE(w->sync());
  }
  CHECK(written.front().first.offset == wal::segment_header_size);
  for (auto& [h, bytes] : written)
    CHECK(read_back(dir, h) == bytes);
  auto got = recover_all(dir);
  REQUIRE(got.report);
  CHECK(got.report->records == written.size());
  CHECK(got.report->cut.empty());
  CHECK(got.records == written);
}

TEST_CASE("segments roll by time and are named by the range they cover",
          "[wal]") {
  test::temp_dir tmp{"sluice-wal"};
  auto dir = tmp.path();
  auto w = open_writer(dir, 100);
  std::vector<std::pair<int64_t, std::string>> appends{
      {50, "log-50-150"},
      {120, "log-50-150"},
      {149, "log-50-150"},
      {150, "log-150-250"},
      {260, "log-260-360"},
      {999, "log-999-1099"},
      {1000, "log-999-1099"},
      // A clock that goes back stays in the segment being written.
      {500, "log-999-1099"},
  };
  std::vector<record> written;
  for (size_t i = 0; i < appends.size(); ++i) {
    auto bytes = payload(i, 10);
    auto h = append(*w, appends[i].first, bytes);
    REQUIRE(h);
    CHECK(h->segment == appends[i].second);
    written.emplace_back(*h, bytes);
  }
  // Time order, which is not the order of the names as strings.
  CHECK(wal::segments(dir) ==
        std::vector<std::string>{"log-50-150", "log-150-250", "log-260-360",
                                 "log-999-1099"});
  auto got = recover_all(dir);
  REQUIRE(got.report);
  CHECK(got.records == written);
}

TEST_CASE("a reopened writer starts a new segment after every existing one",
          "[wal]") {
  test::temp_dir tmp{"sluice-wal"};
  auto dir = tmp.path();
  auto w = open_writer(dir, 100);
  auto first = append(*w, 10, "first");
  REQUIRE(first);
  SECTION("a second writer on the same directory is refused") {
    auto other = wal::writer::open(wal::options{dir, 100});
    REQUIRE_FALSE(other);
    CHECK(has_code(other.error(), errc::refused));
    CHECK(mentions(other.error(), dir));
  }
  SECTION("after close, a new writer never appends to the old segment") {
    w->close();
    auto closed = append(*w, 11, "late");
    REQUIRE_FALSE(closed);
    CHECK(has_code(closed.error(), errc::refused));
    auto old_size = fs::file_size(dir + "/" + first->segment);
    auto w2 = open_writer(dir, 100);
    // Same time as before: the new segment still starts after the old one.
    auto second = append(*w2, 10, "second");
    REQUIRE(second);
    CHECK(second->segment == "log-110-210");
    CHECK(fs::file_size(dir + "/" + first->segment) == old_size);
    auto got = recover_all(dir);
    REQUIRE(got.report);
    CHECK(got.records ==
          std::vector<record>{{*first, "first"}, {*second, "second"}});
  }
}

TEST_CASE("delete_older_than deletes only segments that end at or before the "
          "threshold and never the one being written",
          "[wal]") {
  test::temp_dir tmp{"sluice-wal"};
  auto dir = tmp.path();
  auto w = open_writer(dir, 100);
  std::vector<wal::handle> hs;
  for (int64_t t : {0, 100, 200, 300}) {
    auto h = append(*w, t, "at " + std::to_string(t));
    REQUIRE(h);
    hs.push_back(*h);
  }
  REQUIRE(wal::segments(dir).size() == 4);
  CHECK(*w->delete_older_than(99) == 0);
  CHECK(*w->delete_older_than(199) == 1); // [0,100) only
  CHECK(*w->delete_older_than(200) == 1); // [100,200) ends at 200
  CHECK(wal::segments(dir) ==
        std::vector<std::string>{"log-200-300", "log-300-400"});
  // [300,400) is being written: it stays, even past its end.
  CHECK(*w->delete_older_than(100000) == 1);
  CHECK(wal::segments(dir) == std::vector<std::string>{"log-300-400"});
  auto gone = wal::read(dir, hs[0]);
  REQUIRE_FALSE(gone);
  CHECK(has_code(gone.error(), errc::io_failed));
  CHECK(mentions(gone.error(), hs[0].segment));
  CHECK(read_back(dir, hs[3]) == "at 300");
  auto later = append(*w, 350, "later");
  REQUIRE(later);
  CHECK(later->segment == "log-300-400");
  auto got = recover_all(dir);
  REQUIRE(got.report);
  CHECK(got.report->records == 2);
}

// -- errors
// -----------------------------------------------------------------------

TEST_CASE("a missing log directory is an empty log and reading from it fails "
          "naming the file",
          "[wal]") {
  test::temp_dir tmp{"sluice-wal"};
  auto dir = tmp / "no/such/dir";
  CHECK(wal::segments(dir).empty());
  auto got = recover_all(dir);
  REQUIRE(got.report);
  CHECK(got.report->records == 0);
  auto bad = wal::read(dir, wal::handle{"log-0-100", 16, 3});
  REQUIRE_FALSE(bad);
  CHECK(has_code(bad.error(), errc::io_failed));
  CHECK(mentions(bad.error(), dir + "/log-0-100"));
  // A writer creates it, parents included.
  auto w = open_writer(dir);
  CHECK(fs::is_directory(dir));
  // A file where the directory should be is an error, not an empty log.
  test::write_file(tmp / "file", "x");
  auto not_dir = recover_all(tmp / "file");
  REQUIRE_FALSE(not_dir.report);
  CHECK(has_code(not_dir.report.error(), errc::io_failed));
  auto no_writer = wal::writer::open(wal::options{tmp / "file"});
  REQUIRE_FALSE(no_writer);
  CHECK(has_code(no_writer.error(), errc::io_failed));
}

TEST_CASE("an oversized record is refused and the log stays usable", "[wal]") {
  test::temp_dir tmp{"sluice-wal"};
  auto w = open_writer(tmp.path());
  // The size is checked before the bytes are touched, so one byte backs it.
  char byte = 0;
  auto big = w->append(0, &byte, size_t{wal::max_record_size} + 1);
  REQUIRE_FALSE(big);
  CHECK(has_code(big.error(), errc::refused));
  CHECK(mentions(big.error(), "exceeds the maximum"));
  auto h = append(*w, 0, "small");
  REQUIRE(h);
  CHECK(h->offset == wal::segment_header_size);
  CHECK(read_back(tmp.path(), *h) == "small");
}

TEST_CASE("bad handles and bad options and negative times are refused",
          "[wal]") {
  test::temp_dir tmp{"sluice-wal"};
  auto dir = tmp.path();
  auto w = open_writer(dir);
  auto written = append_many(*w, 2, 100);
  auto h = written[0].first;
  auto refused = [&](const wal::handle& x) {
    auto r = wal::read(dir, x);
    return !r && has_code(r.error(), errc::refused);
  };
  auto corrupt = [&](const wal::handle& x) {
    auto r = wal::read(dir, x);
    return !r && has_code(r.error(), errc::corrupt_data);
  };
  CHECK(refused(wal::handle{"../" + h.segment, h.offset, h.length}));
  CHECK(refused(wal::handle{"LOCK", h.offset, h.length}));
  CHECK(refused(wal::handle{h.segment, 0, h.length}));
  CHECK(corrupt(wal::handle{h.segment, h.offset, h.length + 1}));
  CHECK(corrupt(wal::handle{h.segment, h.offset + 1, h.length}));
  CHECK(corrupt(wal::handle{h.segment, 1 << 20, h.length}));
  auto zero = wal::writer::open(wal::options{dir + "/x", 0});
  REQUIRE_FALSE(zero);
  CHECK(has_code(zero.error(), errc::refused));
  auto empty = wal::writer::open(wal::options{});
  REQUIRE_FALSE(empty);
  CHECK(has_code(empty.error(), errc::refused));
  auto negative = append(*w, -1, "x");
  REQUIRE_FALSE(negative);
  CHECK(has_code(negative.error(), errc::refused));
}
