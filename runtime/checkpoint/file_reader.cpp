#include "runtime/checkpoint/file_reader.hpp"

#include <cerrno>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/error.hpp"
#include "runtime/io/errors.hpp"

namespace sluice {

caf::error file_reader::open(const std::string& path) {
  fd_.close();
  path_ = path;
  size_ = 0;
  io::unique_fd fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (!fd) {
    auto err = errno;
    return make_error(err == ENOENT ? errc::not_found : errc::io_failed,
                      "cannot open " + path + ": " + io::errno_text(err));
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0)
    return io::file_error("cannot stat", path, errno);
  if (!S_ISREG(st.st_mode))
    return make_error(errc::io_failed,
                      "cannot read " + path + ": not a regular file");
  fd_ = std::move(fd);
  size_ = static_cast<uint64_t>(st.st_size);
  return caf::none;
}

caf::error file_reader::read_at(uint64_t offset, void* out, size_t n) const {
  auto* dst = static_cast<char*>(out);
  while (n > 0) {
    auto got = ::pread(fd_.get(), dst, n, static_cast<off_t>(offset));
    if (got < 0) {
      if (errno == EINTR)
        continue;
      return make_error(errc::io_failed, "cannot read " + path_ + " at offset "
                                           + std::to_string(offset) + ": "
                                           + io::errno_text(errno));
    }
    if (got == 0)
      return make_error(errc::io_failed,
                        "cannot read " + path_ + ": the file ended at offset "
                          + std::to_string(offset) + " while being read");
    dst += got;
    offset += static_cast<uint64_t>(got);
    n -= static_cast<size_t>(got);
  }
  return caf::none;
}

caf::expected<buffer> read_whole_file(const std::string& path,
                                      uint64_t max_size) {
  file_reader in;
  if (auto err = in.open(path))
    return err;
  if (in.size() > max_size)
    return make_error(errc::corrupt_data,
                      path + ": " + std::to_string(in.size())
                        + " bytes, more than the limit of "
                        + std::to_string(max_size));
  auto [result, out] = buffer::allocate(static_cast<size_t>(in.size()));
  if (auto err = in.read_at(0, out, static_cast<size_t>(in.size())))
    return err;
  return std::move(result);
}

} // namespace sluice
