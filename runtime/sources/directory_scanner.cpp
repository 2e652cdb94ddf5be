#include "runtime/sources/directory_scanner.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <utility>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "runtime/io/errors.hpp"
#include "runtime/io/unique_fd.hpp"

namespace sluice {

namespace {

/// The largest read() of read_lines: few system calls for big files, bounded
/// memory for huge ones.
constexpr size_t max_read_chunk = 1024 * 1024;

constexpr size_t min_read_chunk = 4096;

struct dir_closer {
  void operator()(DIR* d) const noexcept { ::closedir(d); }
};

using dir_ptr = std::unique_ptr<DIR, dir_closer>;

/// A file found by a scan and not returned before.
struct candidate {
  std::string path;
  timespec ctime;
};

/// Arrival order: inode change time (a rename into the directory sets it),
/// then name for files that arrived within one clock tick.
bool arrived_before(const candidate& x, const candidate& y) {
  if (x.ctime.tv_sec != y.ctime.tv_sec)
    return x.ctime.tv_sec < y.ctime.tv_sec;
  if (x.ctime.tv_nsec != y.ctime.tv_nsec)
    return x.ctime.tv_nsec < y.ctime.tv_nsec;
  return x.path < y.path;
}

/// Prefixes the working directory and drops "." components and trailing
/// slashes. ".." stays: resolving it lexically would be wrong behind a
/// symlink.
std::string make_absolute(const std::string& dir) {
  std::error_code ec;
  auto abs = std::filesystem::absolute(dir, ec);
  if (ec)
    return dir; // no working directory: listing will report the problem
  std::filesystem::path result;
  for (auto& part : abs)
    if (!part.empty() && part != ".")
      result /= part;
  return result.string();
}

/// Appends a line, dropping a trailing '\r'.
void append_line(const char* first, const char* last,
                 std::vector<std::string>& out) {
  if (first != last && last[-1] == '\r')
    --last;
  out.emplace_back(first, last);
}

/// Cuts a chunk of a file into lines; `pending` holds the start of a line
/// that continues in the next chunk.
void split_lines(const char* first, const char* last, std::string& pending,
                 std::vector<std::string>& out) {
  while (first != last) {
    auto n = static_cast<size_t>(last - first);
    auto nl = static_cast<const char*>(std::memchr(first, '\n', n));
    if (nl == nullptr) {
      pending.append(first, last);
      return;
    }
    if (pending.empty()) {
      append_line(first, nl, out);
    } else {
      pending.append(first, nl);
      append_line(pending.data(), pending.data() + pending.size(), out);
      pending.clear();
    }
    first = nl + 1;
  }
}

} // namespace

directory_scanner::directory_scanner(std::string dir)
    : dir_(make_absolute(dir)) {}

directory_scanner::result directory_scanner::scan() {
  result res;
  auto list_failed = [&](int err) {
    // seen_ stays as it is: a directory that is briefly unreadable (a
    // remount, a permission change) must not make every old file new again.
    if (!dir_reported_)
      res.problems.push_back("cannot list " + dir_ + ": "
                             + io::errno_text(err));
    dir_reported_ = true;
    return std::move(res);
  };
  dir_ptr dir{::opendir(dir_.c_str())};
  if (!dir)
    return list_failed(errno);
  std::set<std::string> present; // eligible names, to forget vanished files
  std::vector<candidate> fresh;
  for (;;) {
    errno = 0;
    auto entry = ::readdir(dir.get());
    if (entry == nullptr) {
      // A partial listing would make us forget files that are still there.
      if (errno != 0)
        return list_failed(errno);
      break;
    }
    std::string_view name{entry->d_name};
    if (name.empty() || name.front() == '.' || name.front() == '_')
      continue;
    if (entry->d_type == DT_DIR)
      continue;
    auto path = dir_;
    path += '/';
    path += name;
    if (seen_.count(path) > 0) {
      present.insert(std::move(path));
      continue;
    }
    // lstat: a symlink arrives when the link is renamed in, not when its
    // target last changed.
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0)
      continue; // gone since readdir listed it
    if (S_ISLNK(st.st_mode)) {
      struct stat target;
      // A symlink that cannot be followed is a file we cannot open: it goes
      // on and becomes a problem. One to a directory or a FIFO is skipped.
      if (::stat(path.c_str(), &target) == 0 && !S_ISREG(target.st_mode))
        continue;
    } else if (!S_ISREG(st.st_mode)) {
      continue;
    }
    present.insert(path);
    fresh.push_back(candidate{std::move(path), st.st_ctim});
  }
  dir_reported_ = false;
  std::sort(fresh.begin(), fresh.end(), arrived_before);
  for (auto& x : fresh) {
    // We run as root, so access() says yes to everything: only open() tells.
    // O_NONBLOCK: a FIFO swapped in since the check must not hang the scan.
    auto fd = ::open(x.path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd >= 0) {
      ::close(fd);
      reported_.erase(x.path);
      seen_.insert(x.path);
      res.files.push_back(std::move(x.path));
      continue;
    }
    auto err = errno;
    if (reported_.insert(x.path).second)
      res.problems.push_back("cannot read " + x.path + ": "
                             + io::errno_text(err));
  }
  // Forget files that left the directory: memory stays bounded, and a new
  // file under an old name is new again.
  auto vanished = [&](const std::string& path) {
    return present.count(path) == 0;
  };
  for (auto* xs : {&seen_, &reported_})
    for (auto i = xs->begin(); i != xs->end();)
      i = vanished(*i) ? xs->erase(i) : std::next(i);
  return res;
}

void directory_scanner::mark_seen(const std::vector<std::string>& files) {
  for (auto& path : files) {
    seen_.insert(path);
    reported_.erase(path);
  }
}

void read_lines(const std::string& path, std::vector<std::string>& out) {
  auto fail = [&path](int err) {
    return std::runtime_error("cannot read " + path + ": "
                              + io::errno_text(err));
  };
  io::unique_fd fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (!fd)
    throw fail(errno);
  // Size the buffer for the file (one read() for a small one), bounded for
  // big ones.
  auto chunk = max_read_chunk;
  struct stat st;
  if (::fstat(fd.get(), &st) == 0 && st.st_size >= 0)
    chunk = std::clamp(static_cast<size_t>(st.st_size), min_read_chunk,
                       max_read_chunk);
  auto buf = std::make_unique<char[]>(chunk);
  auto first_new = out.size();
  std::string pending;
  for (;;) {
    auto n = ::read(fd.get(), buf.get(), chunk);
    if (n == 0)
      break;
    if (n > 0) {
      split_lines(buf.get(), buf.get() + n, pending, out);
    } else if (errno != EINTR) {
      auto err = errno;
      // All or nothing: a caller that catches gets `out` back as it was.
      out.erase(out.begin() + static_cast<std::ptrdiff_t>(first_new),
                out.end());
      throw fail(err);
    }
  }
  if (!pending.empty())
    append_line(pending.data(), pending.data() + pending.size(), out);
}

} // namespace sluice
