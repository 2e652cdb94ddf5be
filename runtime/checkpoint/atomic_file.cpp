#include "runtime/checkpoint/atomic_file.hpp"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/error.hpp"

namespace sluice {

namespace {

caf::error os_error(const std::string& what, const std::string& path,
                    int err) {
  return make_error(errc::io_failed,
                    what + " " + path + ": " + std::strerror(err));
}

std::string parent_of(const std::string& path) {
  auto parent = std::filesystem::path{path}.parent_path().string();
  return parent.empty() ? std::string{"."} : parent;
}

std::string temporary_name(const std::string& path) {
  // Unique per process and call; the pid separates processes sharing a
  // directory (a restarted driver while the old one is not yet dead).
  static std::atomic<uint64_t> counter{0};
  return path + "." + std::to_string(::getpid()) + "."
         + std::to_string(counter++) + ".tmp";
}

caf::error write_all(int fd, const std::string& tmp, std::string_view bytes) {
  while (!bytes.empty()) {
    auto n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return os_error("cannot write", tmp, errno);
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return caf::none;
}

} // namespace

caf::error write_file_atomically(const std::string& path, const void* data,
                                 size_t size) {
  std::vector<std::string_view> pieces;
  if (size > 0)
    pieces.emplace_back(static_cast<const char*>(data), size);
  return write_file_atomically(path, pieces);
}

caf::error write_file_atomically(const std::string& path,
                                 const std::vector<std::string_view>& pieces) {
  auto tmp = temporary_name(path);
  auto fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                   0644);
  if (fd < 0)
    return os_error("cannot create", tmp, errno);
  auto fail = [&](caf::error err) {
    if (fd >= 0)
      ::close(fd);
    ::unlink(tmp.c_str());
    return err;
  };
  for (auto piece : pieces)
    if (auto err = write_all(fd, tmp, piece))
      return fail(std::move(err));
  if (::fsync(fd) != 0)
    return fail(os_error("cannot fsync", tmp, errno));
  auto rc = ::close(fd);
  fd = -1;
  if (rc != 0)
    return fail(os_error("cannot close", tmp, errno));
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    return fail(os_error("cannot rename " + tmp + " to", path, errno));
  return fsync_directory(parent_of(path));
}

caf::error fsync_directory(const std::string& dir) {
  auto fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return os_error("cannot open directory", dir, errno);
  auto rc = ::fsync(fd);
  auto err = errno;
  ::close(fd);
  if (rc != 0)
    return os_error("cannot fsync directory", dir, err);
  return caf::none;
}

caf::error ensure_directory(const std::string& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode))
      return caf::none;
    return make_error(errc::io_failed,
                      "cannot use " + dir + ": not a directory");
  }
  if (errno != ENOENT)
    return os_error("cannot stat", dir, errno);
  auto parent = parent_of(dir);
  if (parent != dir)
    if (auto err = ensure_directory(parent))
      return err;
  // EEXIST: another process created it meanwhile, which is as good.
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
    return os_error("cannot create directory", dir, errno);
  return fsync_directory(parent);
}

bool is_temporary_file_name(std::string_view name) noexcept {
  constexpr std::string_view suffix = ".tmp";
  return name.size() >= suffix.size()
         && name.substr(name.size() - suffix.size()) == suffix;
}

} // namespace sluice
