#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "runtime/buffer.hpp"
#include "runtime/io/unique_fd.hpp"

namespace sluice {

/// A file opened for reading and validating: its size at open time and
/// positioned reads that either fill the whole request or fail.
///
/// Lifetime: owns its descriptor, closed by the destructor; not copyable.
/// Concurrency: one thread at a time. Errors name the file:
/// errc::not_found when it does not exist, errc::io_failed otherwise (also
/// when the file shrank under a read: a reader never sees half a request).
class file_reader {
public:
  file_reader() = default;
  file_reader(const file_reader&) = delete;
  file_reader& operator=(const file_reader&) = delete;

  caf::error open(const std::string& path);

  uint64_t size() const noexcept {
    return size_;
  }

  const std::string& path() const noexcept {
    return path_;
  }

  /// Reads exactly `n` bytes at `offset` into `out`.
  caf::error read_at(uint64_t offset, void* out, size_t n) const;

private:
  io::unique_fd fd_;
  uint64_t size_ = 0;
  std::string path_;
};

/// Reads all of `path` into an aligned buffer; a file larger than
/// `max_size` is refused (errc::corrupt_data) before anything is allocated.
caf::expected<buffer> read_whole_file(const std::string& path,
                                      uint64_t max_size);

} // namespace sluice
