// bench_wal: what the write-ahead log costs on this disk. Prints the disk's
// own fsync'd sequential write rate (a plain file, one fdatasync per block,
// the floor any durable log pays), then WAL append throughput for several
// record sizes under fsync_policy::always and ::none. Asserts nothing.
//
//   bench_wal [--dir=DIR] [--seconds=2] [--sizes=1024,65536,1048576]
//             [--max-mb=1024]
//
// Each figure runs for --seconds or until --max-mb were written, whichever
// comes first, in a fresh directory under DIR (default: the working
// directory; /tmp may be a tmpfs, where fdatasync costs nothing), removed
// afterwards.

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "runtime/error.hpp"
#include "runtime/wal/wal.hpp"

namespace {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

struct settings {
  std::string dir = ".";
  double seconds = 2.0;
  std::vector<size_t> sizes{1024, 64 * 1024, 1024 * 1024};
  uint64_t max_bytes = 1024ull << 20;
};

struct figure {
  uint64_t ops = 0;
  uint64_t bytes = 0;
  double seconds = 0;

  double mb_per_s() const {
    return seconds > 0 ? bytes / seconds / 1e6 : 0;
  }

  double ops_per_s() const {
    return seconds > 0 ? ops / seconds : 0;
  }
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "bench_wal: %s\nusage: bench_wal [--dir=DIR] [--seconds=S] "
               "[--sizes=B,B,...] [--max-mb=N]\n",
               why.c_str());
  std::exit(2);
}

settings parse(int argc, char** argv) {
  settings result;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto eq = arg.find('=');
    auto key = arg.substr(0, eq);
    auto value = eq == std::string::npos ? std::string{} : arg.substr(eq + 1);
    if (key == "--help" || key == "-h")
      usage("write-ahead log throughput");
    if (eq == std::string::npos || value.empty())
      usage("option " + arg + " needs =VALUE");
    try {
      if (key == "--dir") {
        result.dir = value;
      } else if (key == "--seconds") {
        result.seconds = std::stod(value);
        if (result.seconds <= 0)
          usage("--seconds must be positive");
      } else if (key == "--max-mb") {
        result.max_bytes = std::stoull(value) << 20;
      } else if (key == "--sizes") {
        result.sizes.clear();
        size_t pos = 0;
        while (pos <= value.size()) {
          auto comma = value.find(',', pos);
          auto item = value.substr(pos, comma - pos);
          auto size = std::stoull(item);
          if (size == 0 || size > sluice::wal::max_record_size)
            usage("record size " + item + " out of range");
          result.sizes.push_back(size);
          if (comma == std::string::npos)
            break;
          pos = comma + 1;
        }
      } else {
        usage("unknown option " + key);
      }
    } catch (std::exception&) {
      usage("bad value in " + arg);
    }
  }
  return result;
}

const char* fs_type(const std::string& dir) {
  struct statfs st;
  if (::statfs(dir.c_str(), &st) != 0)
    return "unknown";
  switch (static_cast<unsigned long>(st.f_type)) {
    case 0x01021994:
      return "tmpfs";
    case 0xEF53:
      return "ext2/3/4";
    case 0x58465342:
      return "xfs";
    case 0x9123683E:
      return "btrfs";
    case 0x794C7630:
      return "overlayfs";
    default:
      return "other";
  }
}

std::vector<char> random_bytes(size_t size) {
  std::vector<char> result(size);
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (auto& c : result) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
  return result;
}

double since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

/// Blocks of `size` bytes written one after the other to a plain file, with
/// an fdatasync after each: the best any fsync-per-append log can do.
figure raw_fsync_rate(const settings& s, const std::string& dir, size_t size) {
  figure result;
  auto path = dir + "/raw";
  auto fd =
      ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    std::perror(path.c_str());
    std::exit(1);
  }
  auto block = random_bytes(size);
  auto start = clock_type::now();
  while (result.bytes < s.max_bytes && since(start) < s.seconds) {
    size_t done = 0;
    while (done < size) {
      auto n = ::pwrite(fd, block.data() + done, size - done,
                        static_cast<off_t>(result.bytes + done));
      if (n <= 0) {
        std::perror("pwrite");
        std::exit(1);
      }
      done += static_cast<size_t>(n);
    }
    if (::fdatasync(fd) != 0) {
      std::perror("fdatasync");
      std::exit(1);
    }
    result.bytes += size;
    ++result.ops;
  }
  result.seconds = since(start);
  ::close(fd);
  ::unlink(path.c_str());
  return result;
}

/// WAL appends of `size` bytes under `policy`; `with_sync` ends the timing
/// with a writer sync, so `none` is also measured until the data is durable.
figure wal_rate(const settings& s, const std::string& dir, size_t size,
                sluice::wal::fsync_policy policy, bool with_sync) {
  figure result;
  auto log_dir = dir + "/wal";
  auto w =
      sluice::wal::writer::open(sluice::wal::options{log_dir, 60000, policy});
  if (!w) {
    std::fprintf(stderr, "%s\n", sluice::describe(w.error()).c_str());
    std::exit(1);
  }
  auto record = random_bytes(size);
  auto start = clock_type::now();
  while (result.bytes < s.max_bytes && since(start) < s.seconds) {
    auto h = (*w)->append(0, record.data(), record.size());
    if (!h) {
      std::fprintf(stderr, "%s\n", sluice::describe(h.error()).c_str());
      std::exit(1);
    }
    result.bytes += size;
    ++result.ops;
  }
  if (with_sync) {
    if (auto err = (*w)->sync()) {
      std::fprintf(stderr, "%s\n", sluice::describe(err).c_str());
      std::exit(1);
    }
  }
  result.seconds = since(start);
  (*w)->close();
  std::error_code ec;
  fs::remove_all(log_dir, ec);
  return result;
}

double crc_rate() {
  auto bytes = random_bytes(64u << 20);
  auto start = clock_type::now();
  volatile uint32_t sink = 0;
  int rounds = 0;
  while (since(start) < 0.5 || rounds == 0) {
    sink = sink ^ sluice::crc32c(bytes.data(), bytes.size());
    ++rounds;
  }
  return rounds * static_cast<double>(bytes.size()) / since(start) / 1e6;
}

std::string size_name(size_t size) {
  if (size % (1024 * 1024) == 0)
    return std::to_string(size / (1024 * 1024)) + " MiB";
  if (size % 1024 == 0)
    return std::to_string(size / 1024) + " KiB";
  return std::to_string(size) + " B";
}

void print_row(const char* what, size_t size, const figure& f) {
  std::printf("%-28s %8s %10.1f %12.0f %10" PRIu64 " %8.2f\n", what,
              size_name(size).c_str(), f.mb_per_s(), f.ops_per_s(), f.ops,
              f.seconds);
  std::fflush(stdout);
}

} // namespace

int main(int argc, char** argv) {
  auto s = parse(argc, argv);
  std::error_code ec;
  fs::create_directories(s.dir, ec);
  auto pattern = s.dir + "/bench_wal-XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    std::perror(pattern.c_str());
    return 1;
  }
  std::string dir = buf.data();
  std::printf("directory: %s (%s), %.1f s or %" PRIu64 " MB per figure\n",
              dir.c_str(), fs_type(dir), s.seconds, s.max_bytes >> 20);
  std::printf("crc32c (Boost.CRC): %.0f MB/s\n\n", crc_rate());
  std::printf("%-28s %8s %10s %12s %10s %8s\n", "what", "record", "MB/s",
              "ops/s", "ops", "seconds");
  using sluice::wal::fsync_policy;
  for (auto size : s.sizes) {
    print_row("disk: write+fdatasync", size, raw_fsync_rate(s, dir, size));
    print_row("wal append, always", size,
              wal_rate(s, dir, size, fsync_policy::always, false));
    print_row("wal append, none", size,
              wal_rate(s, dir, size, fsync_policy::none, false));
    print_row("wal append, none + sync", size,
              wal_rate(s, dir, size, fsync_policy::none, true));
  }
  fs::remove_all(dir, ec);
  return 0;
}
