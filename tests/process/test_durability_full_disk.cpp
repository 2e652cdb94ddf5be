// Durability when the disk under the receiver WAL fills up
// (docs/recovery.md), with real processes: wordcount reads a socket with
// the WAL on; while the disk is full its receiver holds blocks unreported,
// and once there is room again every line is counted exactly once.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include "tests/process/cluster.hpp"
#include "tests/process/durability.hpp"

using namespace sluice::test;
namespace fs = std::filesystem;

// -- a full disk under the receiver WAL --------------------------------------------------

namespace {

/// Writes `path` until the file system is full (ENOSPC), in ever smaller
/// pieces so that not even a page is left, and syncs it.
void fill_up(const std::string& path) {
  auto fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  REQUIRE(fd >= 0);
  std::string chunk(1 << 16, 'x');
  for (size_t n = chunk.size(); n > 0;) {
    auto written = ::write(fd, chunk.data(), n);
    if (written < 0 && errno == EINTR)
      continue;
    if (written < 0) {
      REQUIRE(errno == ENOSPC);
      n /= 2;
    }
  }
  ::fsync(fd);
  ::close(fd);
}

/// The largest file below `dir` and its size.
std::pair<std::string, uintmax_t> largest_file(const std::string& dir) {
  std::pair<std::string, uintmax_t> best{"", 0};
  for (auto& [path, size] : file_sizes(dir))
    if (size >= best.second)
      best = {path, size};
  return best;
}

} // namespace

TEST_CASE("a full disk under the receiver WAL holds blocks unreported until "
          "space returns and the text is then counted exactly once",
          "[process][recovery]") {
  temp_dir dir{"sluice-full-disk"};
  auto out = dir / "out";
  // Declared after `dir`, so it is unmounted before `dir` is removed.
  tmpfs_mount disk{dir / "disk", "4m"};
  auto ckpt = disk.mounted() ? dir / "disk/ckpt" : dir / "ckpt";
  // About 1.2 MB of text at 4000 lines/s: 10 s of stream, blocks of some
  // 24 KB (several pages each), still arriving while the disk is full.
  auto text = make_text(40000, 23);
  text_server server{text};
  std::vector<std::string> args{wordcount_binary(),
                                "--local=2",
                                "--source=socket://127.0.0.1:"
                                  + std::to_string(server.port()),
                                "--output=" + out,
                                "--batch-interval=200ms",
                                "--wal",
                                "--checkpoint=" + ckpt,
                                "--sluice.receiver.max-rate=4000",
                                "--sluice.stop-gracefully-on-shutdown=true"};
  std::function<void(pid_t)> fill;
  std::function<void(pid_t)> make_room;
  if (disk.mounted()) {
    fill = [&](pid_t) { fill_up(dir / "disk/filler"); };
    make_room = [&](pid_t) { fs::remove(dir / "disk/filler"); };
  } else {
    // No tmpfs (not root, or no mount namespace): a file size limit at the
    // receiver WAL's current size makes its next append fail (EFBIG) while
    // the smaller files (driver log, checkpoints, output) still fit; the
    // limit is lifted to make room. SIGXFSZ is ignored (inherited through
    // exec), so the write fails instead of killing the process.
    WARN("cannot mount a tmpfs (" << disk.error()
                                  << "): filling the disk with a file size limit");
    args.insert(args.begin(), {"/bin/sh", "-c", "trap '' XFSZ; exec \"$@\"", "sh"});
    fill = [&](pid_t pid) {
      auto wal = largest_file(ckpt + "/receiver-wal");
      REQUIRE(wal.second > 0);
      rlimit lim{};
      REQUIRE(::prlimit(pid, RLIMIT_FSIZE, nullptr, &lim) == 0);
      lim.rlim_cur = static_cast<rlim_t>(wal.second);
      REQUIRE(::prlimit(pid, RLIMIT_FSIZE, &lim, nullptr) == 0);
    };
    make_room = [&](pid_t pid) {
      rlimit lim{};
      REQUIRE(::prlimit(pid, RLIMIT_FSIZE, nullptr, &lim) == 0);
      lim.rlim_cur = lim.rlim_max;
      REQUIRE(::prlimit(pid, RLIMIT_FSIZE, &lim, nullptr) == 0);
    };
  }
  child_process p{args, dir.path(), "wordcount"};
  auto await = [&](const std::function<bool()>& cond,
                   std::chrono::milliseconds deadline = std::chrono::seconds{30}) {
    if (wait_until(cond, deadline))
      return true;
    UNSCOPED_INFO(p.err());
    return false;
  };
  // The WAL works: blocks are written and counted.
  REQUIRE(await([&] {
    auto records = batch_records(p.err(), 0);
    return std::any_of(records.begin(), records.end(), [](auto n) { return n > 0; });
  }));
  fill(p.pid());
  // The receiver says it cannot write, and that it holds and retries.
  size_t failed_at = std::string::npos;
  REQUIRE(await([&] {
    failed_at = p.err().find("cannot write block ");
    return failed_at != std::string::npos;
  }));
  CHECK_THAT(p.err().substr(failed_at), Catch::Contains(" to the WAL: ")
                                          && Catch::Contains("blocks are held and retried"));
  // Blocks reported before the failure may still be counted by the next
  // batches; then nothing is, although lines keep arriving: a block the WAL
  // does not hold is never reported.
  size_t held_from = 0;
  REQUIRE(await([&] {
    auto records = batch_records(p.err(), failed_at);
    if (records.size() < 3
        || !std::all_of(records.end() - 3, records.end(), [](auto r) { return r == 0; }))
      return false;
    held_from = records.size() - 3;
    return true;
  }));
  auto counted = read_word_totals(out);
  REQUIRE(await([&] {
    return batch_records(p.err(), failed_at).size() >= held_from + 10;
  }));
  auto after_failure = batch_records(p.err(), failed_at);
  std::vector<uint64_t> held(after_failure.begin() + static_cast<std::ptrdiff_t>(held_from),
                             after_failure.end());
  CHECK(held == std::vector<uint64_t>(held.size(), 0));
  CHECK(read_word_totals(out) == counted);
  auto expected = count_words(text);
  CHECK(counted != expected); // the held blocks are not counted yet
  CHECK(p.running());
  // Room again: the held blocks are written, reported and counted, once.
  make_room(p.pid());
  REQUIRE(await([&] {
    return p.err().find("the WAL accepts blocks again") != std::string::npos;
  }));
  REQUIRE(await([&] { return server.sent(); }, std::chrono::seconds{60}));
  bool exact = await([&] { return read_word_totals(out) == expected; },
                     std::chrono::seconds{60});
  auto got = read_word_totals(out);
  for (auto& [w, n] : expected) {
    INFO(w);
    CHECK(got[w] == n);
  }
  REQUIRE(exact);
  p.signal(SIGTERM);
  CHECK(exited_with(p.wait(), 0));
  CHECK(read_word_totals(out) == expected);
}
