#pragma once

// Thin POSIX wrappers for the WAL: whole reads and writes at an offset
// (retrying short transfers and EINTR). Internal to runtime/wal/; what every
// file writer needs (owned descriptors, directory fsync, errors that name
// the file) is in runtime/io/.

#include <cstddef>
#include <cstdint>

#include <sys/uio.h>

namespace sluice::wal::posix {

/// Writes all of `iov` at `offset`; returns 0 or the errno that stopped it.
/// `written` says how many bytes reached the file either way (a full disk
/// usually takes part of a write before refusing the rest).
int write_all_at(int fd, const iovec* iov, int count, uint64_t offset,
                 size_t& written);

/// Reads up to `size` bytes at `offset` until EOF; returns 0 or the errno.
/// `got` < `size` without an error means the file ended first.
int read_all_at(int fd, void* out, size_t size, uint64_t offset, size_t& got);

/// Size of an open file, or -1 with errno set.
int64_t file_size(int fd);

} // namespace sluice::wal::posix
