#include "runtime/wal/posix_io.hpp"

#include <cerrno>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace sluice::wal::posix {

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

int64_t file_size(int fd) {
  struct stat st;
  if (::fstat(fd, &st) != 0)
    return -1;
  return static_cast<int64_t>(st.st_size);
}

} // namespace sluice::wal::posix
