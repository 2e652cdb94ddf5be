#include "runtime/sinks/text_files.hpp"

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include <fcntl.h>
#include <unistd.h>

namespace sluice {

namespace {

[[noreturn]] void fail(const std::string& what, const std::string& path,
                       int err) {
  throw std::runtime_error(what + " " + path + ": " + std::strerror(err));
}

void fsync_dir(const std::string& dir) {
  auto fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0)
    fail("cannot open directory", dir, errno);
  // The rename is durable only once the directory entry is.
  auto rc = ::fsync(fd);
  auto err = errno;
  ::close(fd);
  if (rc != 0)
    fail("cannot fsync directory", dir, err);
}

} // namespace

std::string part_file_name(uint32_t p) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "part-%05u", p);
  return buf;
}

std::string batch_dir(const std::string& prefix, const std::string& suffix,
                      time_ms t) {
  auto result = prefix + "-" + std::to_string(t);
  if (!suffix.empty())
    result += "." + suffix;
  return result;
}

void write_part_file(const std::string& dir, uint32_t p,
                     const std::string& content) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    throw std::runtime_error("cannot create directory " + dir + ": "
                             + ec.message());
  static std::atomic<uint64_t> counter{0};
  auto final_path = dir + "/" + part_file_name(p);
  // Unique per process and call: two attempts of one task may overlap.
  auto tmp_path = dir + "/." + part_file_name(p) + "." + std::to_string(::getpid())
                  + "." + std::to_string(counter++) + ".tmp";
  auto fd = ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                   0644);
  if (fd < 0)
    fail("cannot create", tmp_path, errno);
  auto cleanup_fail = [&](const char* what, int err) {
    ::close(fd);
    ::unlink(tmp_path.c_str());
    fail(what, tmp_path, err);
  };
  size_t done = 0;
  while (done < content.size()) {
    auto n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      cleanup_fail("cannot write", errno);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0)
    cleanup_fail("cannot fsync", errno);
  if (::close(fd) != 0) {
    auto err = errno;
    ::unlink(tmp_path.c_str());
    fail("cannot close", tmp_path, err);
  }
  if (::rename(tmp_path.c_str(), final_path.c_str()) != 0) {
    auto err = errno;
    ::unlink(tmp_path.c_str());
    fail("cannot rename to", final_path, err);
  }
  fsync_dir(dir);
}

} // namespace sluice
