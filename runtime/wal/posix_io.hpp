#pragma once

// Thin POSIX wrappers for the WAL: whole reads and writes at an offset
// (retrying short transfers and EINTR), directory fsync, and errors that name
// the file. Internal to runtime/wal/.

#include <cstddef>
#include <cstdint>
#include <string>

#include <caf/error.hpp>

#include <sys/uio.h>

namespace sluice::wal::posix {

/// An open file descriptor, closed when the owner goes. Move-only; used by one
/// thread at a time.
class file {
public:
  file() = default;
  explicit file(int fd)
    : fd_(fd) {
  }
  file(file&& other) noexcept
    : fd_(other.release()) {
  }
  file& operator=(file&& other) noexcept;
  file(const file&) = delete;
  file& operator=(const file&) = delete;
  ~file();

  int get() const noexcept {
    return fd_;
  }

  explicit operator bool() const noexcept {
    return fd_ >= 0;
  }

  int release() noexcept {
    auto fd = fd_;
    fd_ = -1;
    return fd;
  }

  /// Closes now; returns the errno of close (0 on success).
  int close() noexcept;

private:
  int fd_ = -1;
};

/// Writes all of `iov` at `offset`; returns 0 or the errno that stopped it.
/// `written` says how many bytes reached the file either way (a full disk
/// usually takes part of a write before refusing the rest).
int write_all_at(int fd, const iovec* iov, int count, uint64_t offset,
                 size_t& written);

/// Reads up to `size` bytes at `offset` until EOF; returns 0 or the errno.
/// `got` < `size` without an error means the file ended first.
int read_all_at(int fd, void* out, size_t size, uint64_t offset, size_t& got);

/// fsyncs a directory so the entries created or removed in it are durable.
/// Returns 0 or the errno.
int fsync_dir(const std::string& dir);

/// Size of an open file, or -1 with errno set.
int64_t file_size(int fd);

/// "<what> <path>: <strerror(err)>" as an io_failed error.
caf::error io_error(const std::string& what, const std::string& path, int err);

/// strerror, thread-safe.
std::string describe_errno(int err);

} // namespace sluice::wal::posix
