// The write-ahead log on a full disk and under a file size limit: a failed
// append keeps every acknowledged record and appends work again once there
// is room.

#include <catch2/catch.hpp>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <filesystem>
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
#include "tests/unit/wal_tests.hpp"

using namespace sluice;
using namespace sluice::test;
namespace fs = std::filesystem;

namespace {

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
