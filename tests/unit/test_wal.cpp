#include <catch2/catch.hpp>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/error.hpp"
#include "runtime/wal/format.hpp"
#include "runtime/wal/wal.hpp"
#include "tests/support/helpers.hpp"

using namespace sluice;
namespace fs = std::filesystem;

namespace {

/// Deterministic payload number `i` of `size` bytes.
std::string payload(size_t i, size_t size) {
  std::string result(size, '\0');
  uint64_t x = i * 0x9E3779B97F4A7C15ull + 1;
  for (auto& c : result) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
  return result;
}

bool has_code(const caf::error& err, errc code) {
  return err.category() == error_category() &&
         err.code() == static_cast<uint8_t>(code);
}

bool mentions(const caf::error& err, const std::string& what) {
  return describe(err).find(what) != std::string::npos;
}

caf::expected<wal::handle> append(wal::writer& w, int64_t now,
                                  const std::string& bytes) {
  return w.append(now, bytes.data(), bytes.size());
}

std::unique_ptr<wal::writer>
open_writer(const std::string& dir, int64_t rolling_ms = 60000,
            wal::fsync_policy sync = wal::fsync_policy::none) {
  auto w = wal::writer::open(wal::options{dir, rolling_ms, sync});
  if (!w)
    FAIL("cannot open a writer on " << dir << ": " << describe(w.error()));
  return std::move(*w);
}

using record = std::pair<wal::handle, std::string>;

/// Everything recover() hands out, plus its report.
struct recovered {
  caf::expected<wal::recovery_report> report{wal::recovery_report{}};
  std::vector<record> records;
};

recovered recover_all(const std::string& dir) {
  recovered result;
  result.report =
      wal::recover(dir, [&](const wal::handle& h, const buffer& bytes) {
        result.records.emplace_back(h, std::string{bytes.view()});
      });
  return result;
}

std::string read_back(const std::string& dir, const wal::handle& h) {
  auto bytes = wal::read(dir, h);
  if (!bytes)
    FAIL("cannot read " << to_string(h) << ": " << describe(bytes.error()));
  return std::string{bytes->view()};
}

/// XORs the byte at `offset` of `path` with 0xFF.
void flip_byte(const std::string& path, uint64_t offset) {
  std::fstream f{path, std::ios::in | std::ios::out | std::ios::binary};
  REQUIRE(f);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.get(c);
  f.seekp(static_cast<std::streamoff>(offset));
  f.put(static_cast<char>(c ^ 0xFF));
  REQUIRE(f);
}

void append_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out{path, std::ios::binary | std::ios::app};
  out << bytes;
  REQUIRE(out);
}

uint64_t end_of(const wal::handle& h) {
  return h.offset + wal::frame_header_size + h.length;
}

/// Appends `n` records of `size` bytes at time `now`; returns them.
std::vector<record> append_many(wal::writer& w, size_t n, size_t size,
                                int64_t now = 0) {
  std::vector<record> result;
  for (size_t i = 0; i < n; ++i) {
    auto bytes = payload(i, size);
    auto h = append(w, now, bytes);
    if (!h)
      FAIL("append " << i << " failed: " << describe(h.error()));
    result.emplace_back(*h, std::move(bytes));
  }
  return result;
}

// -- the full-disk scenario ---------------------------------------------------
//
// Runs in the test process (tmpfs) or in a forked child (file size limit), so
// it reports failures as strings instead of through Catch2.

struct scenario_result {
  std::vector<std::string> failures;
  size_t acknowledged = 0;

  void check(bool ok, const std::string& what) {
    if (!ok)
      failures.push_back(what);
  }
};

/// Appends 3000-byte records stamped 0, 1, 2, ... to `dir` until an append
/// fails, then checks that the failure names `cause`, that every
/// acknowledged record reads back and is exactly what recovery finds, calls
/// `free_space`, and checks that appends work again.
scenario_result
full_disk_scenario(const std::string& dir, int64_t rolling_ms,
                   const std::string& cause,
                   const std::function<std::string(wal::writer&)>& free_space) {
  scenario_result result;
  auto opened = wal::writer::open(
      wal::options{dir, rolling_ms, wal::fsync_policy::always});
  if (!opened) {
    result.check(false, "open: " + describe(opened.error()));
    return result;
  }
  auto& w = **opened;
  std::vector<record> acked;
  caf::error failure;
  int64_t now = 0;
  for (; now < 100000; ++now) {
    auto bytes = payload(static_cast<size_t>(now), 3000);
    auto h = append(w, now, bytes);
    if (!h) {
      failure = std::move(h.error());
      break;
    }
    acked.emplace_back(*h, std::move(bytes));
  }
  result.acknowledged = acked.size();
  result.check(static_cast<bool>(failure), "no append ever failed");
  result.check(!acked.empty(), "no append succeeded before the disk filled");
  if (!failure || acked.empty())
    return result;
  result.check(has_code(failure, errc::io_failed),
               "failure is not io_failed: " + describe(failure));
  result.check(mentions(failure, cause), "failure does not name the cause '" +
                                             cause + "': " + describe(failure));
  // Still full: the same append fails again and leaves nothing behind.
  auto again = append(w, now, payload(static_cast<size_t>(now), 3000));
  result.check(!again, "the retried append succeeded on a full disk");
  auto verify = [&](const std::vector<record>& expected,
                    const std::string& when) {
    for (auto& [h, bytes] : expected) {
      auto got = wal::read(dir, h);
      if (!got)
        result.check(false, when + ": cannot read " + to_string(h) + ": " +
                                describe(got.error()));
      else
        result.check(got->view() == bytes,
                     when + ": wrong bytes in " + to_string(h));
    }
    std::vector<wal::handle> found;
    auto report = wal::recover(
        dir, [&](const wal::handle& h, const buffer&) { found.push_back(h); });
    if (!report) {
      result.check(false,
                   when + ": recover failed: " + describe(report.error()));
      return;
    }
    result.check(report->cut.empty(), when + ": recovery cut a torn tail");
    result.check(found.size() == expected.size(),
                 when + ": recovery found " + std::to_string(found.size()) +
                     " records, " + std::to_string(expected.size()) +
                     " were acknowledged");
    for (size_t i = 0; i < std::min(found.size(), expected.size()); ++i)
      result.check(found[i] == expected[i].first,
                   when + ": record " + std::to_string(i) + " is " +
                       to_string(found[i]) + ", expected " +
                       to_string(expected[i].first));
  };
  verify(acked, "on a full disk");
  if (auto why = free_space(w); !why.empty()) {
    result.check(false, "cannot free space: " + why);
    return result;
  }
  // Only what free_space left: it may have deleted old segments.
  std::vector<record> kept;
  for (auto& r : acked)
    if (fs::exists(dir + "/" + r.first.segment))
      kept.push_back(r);
  auto bytes = payload(999999, 3000);
  auto h = append(w, now, bytes);
  if (!h) {
    result.check(false,
                 "append after freeing space failed: " + describe(h.error()));
    return result;
  }
  // The failed attempts were rolled back: the new record follows the last
  // acknowledged one directly when it lands in the same segment.
  if (h->segment == acked.back().first.segment)
    result.check(h->offset == end_of(acked.back().first),
                 "the new record is at offset " + std::to_string(h->offset) +
                     ", not right after the last acknowledged one");
  kept.emplace_back(*h, bytes);
  verify(kept, "after freeing space");
  return result;
}

/// Runs the scenario under RLIMIT_FSIZE in a forked child (the limit and
/// SIGXFSZ disposition must not leak into the test process), with a limit
/// of 64 KiB per file and one segment; "freeing space" lifts the limit.
scenario_result file_size_limit_scenario(const std::string& dir) {
  scenario_result result;
  int fds[2];
  if (::pipe(fds) != 0) {
    result.check(false, "pipe failed");
    return result;
  }
  auto pid = ::fork();
  if (pid < 0) {
    result.check(false, "fork failed");
    return result;
  }
  if (pid == 0) {
    ::close(fds[0]);
    std::string out;
    int status = 0;
    try {
      // Without SIG_IGN, crossing the limit kills the process; with it the
      // write fails with EFBIG, which is what a WAL must survive.
      std::signal(SIGXFSZ, SIG_IGN);
      rlimit lim{};
      ::getrlimit(RLIMIT_FSIZE, &lim);
      rlimit small = lim;
      small.rlim_cur = 64 * 1024;
      if (::setrlimit(RLIMIT_FSIZE, &small) != 0)
        throw std::runtime_error("setrlimit failed");
      auto child = full_disk_scenario(
          dir, 1000000, std::strerror(EFBIG), [&](wal::writer&) {
            return ::setrlimit(RLIMIT_FSIZE, &lim) == 0
                       ? std::string{}
                       : std::string{"cannot lift the limit"};
          });
      out = std::to_string(child.acknowledged) + "\n";
      for (auto& f : child.failures)
        out += f + "\n";
      status = child.failures.empty() ? 0 : 1;
    } catch (std::exception& e) {
      out = "0\nexception: " + std::string{e.what()} + "\n";
      status = 2;
    }
    size_t done = 0;
    while (done < out.size()) {
      auto n = ::write(fds[1], out.data() + done, out.size() - done);
      if (n <= 0)
        break;
      done += static_cast<size_t>(n);
    }
    ::_exit(status);
  }
  ::close(fds[1]);
  std::string out;
  char buf[4096];
  for (;;) {
    auto n = ::read(fds[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  auto eol = out.find('\n');
  if (eol != std::string::npos) {
    result.acknowledged = std::stoul(out.substr(0, eol));
    size_t pos = eol + 1;
    while ((eol = out.find('\n', pos)) != std::string::npos) {
      result.failures.push_back(out.substr(pos, eol - pos));
      pos = eol + 1;
    }
  }
  if (!WIFEXITED(status) ||
      (WEXITSTATUS(status) != 0 && result.failures.empty()))
    result.failures.push_back("child ended with status " +
                              std::to_string(status));
  return result;
}

} // namespace

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

// -- a full disk
// ------------------------------------------------------------------

TEST_CASE("a full disk fails the append but keeps every acknowledged record "
          "and appends work again once space is freed",
          "[wal]") {
  test::temp_dir tmp{"sluice-wal"};
  auto mnt = tmp / "tmpfs";
  test::tmpfs_mount disk{mnt, "256k"};
  scenario_result result;
  if (disk.mounted()) {
    // 10 ms segments of ~30 KB: the disk fills after several, and deleting
    // all but the newest two frees room.
    result = full_disk_scenario(
        mnt + "/wal", 10, std::strerror(ENOSPC), [](wal::writer& w) {
          auto segs = wal::list_segments(w.dir());
          if (!segs || segs->size() < 3)
            return std::string{"fewer than 3 segments"};
          auto threshold = (*segs)[segs->size() - 3].range.end_ms;
          auto deleted = w.delete_older_than(threshold);
          if (!deleted)
            return describe(deleted.error());
          return *deleted > 0 ? std::string{} : std::string{"nothing deleted"};
        });
  } else {
    WARN("cannot mount a tmpfs (" << disk.error()
                                  << "): testing with a file size limit");
    result = file_size_limit_scenario(tmp / "wal");
  }
  INFO("acknowledged before the failure: " << result.acknowledged);
  for (auto& f : result.failures)
    FAIL_CHECK(f);
  CHECK(result.acknowledged > 10);
}

TEST_CASE("a file size limit fails the append but keeps every acknowledged "
          "record and appends work again once it is lifted",
          "[wal]") {
  test::temp_dir tmp{"sluice-wal"};
  auto result = file_size_limit_scenario(tmp / "wal");
  INFO("acknowledged before the failure: " << result.acknowledged);
  for (auto& f : result.failures)
    FAIL_CHECK(f);
  // 64 KiB of 3009-byte frames after a 16-byte header.
  CHECK(result.acknowledged == (64 * 1024 - 16) / 3009);
}
