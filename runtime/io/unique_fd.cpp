#include "runtime/io/unique_fd.hpp"

#include <cerrno>

#include <unistd.h>

namespace sluice::io {

unique_fd& unique_fd::operator=(unique_fd&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = other.release();
  }
  return *this;
}

unique_fd::~unique_fd() {
  close();
}

int unique_fd::close() noexcept {
  if (fd_ < 0)
    return 0;
  // Linux releases the descriptor even when close fails; never retry it.
  auto rc = ::close(fd_);
  fd_ = -1;
  return rc == 0 ? 0 : errno;
}

} // namespace sluice::io
