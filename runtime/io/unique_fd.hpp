#pragma once

#include <utility>

namespace sluice::io {

/// An open file descriptor, closed when its owner goes, so that every path
/// out of a scope (an error return included) releases it. Move-only; used by
/// one thread at a time.
class unique_fd {
public:
  unique_fd() = default;

  explicit unique_fd(int fd) noexcept
    : fd_(fd) {
  }

  unique_fd(unique_fd&& other) noexcept
    : fd_(other.release()) {
  }

  unique_fd& operator=(unique_fd&& other) noexcept;

  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;

  ~unique_fd();

  int get() const noexcept {
    return fd_;
  }

  explicit operator bool() const noexcept {
    return fd_ >= 0;
  }

  /// Gives up ownership without closing.
  int release() noexcept {
    return std::exchange(fd_, -1);
  }

  /// Closes now; returns the errno of close (0 on success). Some file
  /// systems report delayed write errors only here, so a writer that must
  /// know its data arrived checks this instead of leaving it to the
  /// destructor.
  int close() noexcept;

private:
  int fd_ = -1;
};

} // namespace sluice::io
