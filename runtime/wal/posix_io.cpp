#include "runtime/wal/posix_io.hpp"

#include <cerrno>
#include <cstring>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/error.hpp"

namespace sluice::wal::posix {

file& file::operator=(file&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = other.release();
  }
  return *this;
}

file::~file() {
  close();
}

int file::close() noexcept {
  if (fd_ < 0)
    return 0;
  // Linux releases the descriptor even when close fails; never retry it.
  auto rc = ::close(fd_);
  fd_ = -1;
  return rc == 0 ? 0 : errno;
}

int write_all_at(int fd, const iovec* iov, int count, uint64_t offset,
                 size_t& written) {
  written = 0;
  std::vector<iovec> rest(iov, iov + count);
  auto* first = rest.data();
  auto left = count;
  while (left > 0) {
    auto n = ::pwritev(fd, first, left, static_cast<off_t>(offset + written));
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return errno;
    }
    if (n == 0)
      return EIO; // pwritev never returns 0 for a non-empty request
    written += static_cast<size_t>(n);
    // A short write (a full disk, a signal, a file size limit) took a prefix:
    // skip what went out and retry the rest, which then fails with the cause.
    auto done = static_cast<size_t>(n);
    while (left > 0 && done >= first->iov_len) {
      done -= first->iov_len;
      ++first;
      --left;
    }
    if (left > 0) {
      first->iov_base = static_cast<char*>(first->iov_base) + done;
      first->iov_len -= done;
    }
  }
  return 0;
}

int read_all_at(int fd, void* out, size_t size, uint64_t offset, size_t& got) {
  got = 0;
  auto* dst = static_cast<char*>(out);
  while (got < size) {
    auto n =
        ::pread(fd, dst + got, size - got, static_cast<off_t>(offset + got));
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return errno;
    }
    if (n == 0)
      break; // end of file
    got += static_cast<size_t>(n);
  }
  return 0;
}

int fsync_dir(const std::string& dir) {
  auto fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return errno;
  auto rc = ::fsync(fd);
  auto err = rc == 0 ? 0 : errno;
  ::close(fd);
  return err;
}

int64_t file_size(int fd) {
  struct stat st;
  if (::fstat(fd, &st) != 0)
    return -1;
  return static_cast<int64_t>(st.st_size);
}

std::string describe_errno(int err) {
  char buf[256];
  // The GNU strerror_r returns the message, possibly not in buf.
  return ::strerror_r(err, buf, sizeof(buf));
}

caf::error io_error(const std::string& what, const std::string& path, int err) {
  return make_error(errc::io_failed,
                    what + " " + path + ": " + describe_errno(err));
}

} // namespace sluice::wal::posix
