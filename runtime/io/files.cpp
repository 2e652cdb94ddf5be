#include "runtime/io/files.hpp"

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <filesystem>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/error.hpp"
#include "runtime/io/errors.hpp"
#include "runtime/io/unique_fd.hpp"

namespace sluice::io {

namespace {

std::string parent_of(const std::string& path) {
  auto parent = std::filesystem::path{path}.parent_path().string();
  return parent.empty() ? std::string{"."} : parent;
}

std::string temporary_path(const std::string& path, temporary_name naming) {
  static std::atomic<uint64_t> counter{0};
  auto unique = "." + std::to_string(::getpid()) + "." +
                std::to_string(counter++) + ".tmp";
  if (naming == temporary_name::beside)
    return path + unique;
  std::filesystem::path p{path};
  return (p.parent_path() / ("." + p.filename().string() + unique)).string();
}

} // namespace

int write_all(int fd, const void* data, size_t size) {
  auto* next = static_cast<const char*>(data);
  while (size > 0) {
    auto n = ::write(fd, next, size);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return errno;
    }
    next += n;
    size -= static_cast<size_t>(n);
  }
  return 0;
}

caf::error fsync_directory(const std::string& dir) {
  unique_fd fd{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (!fd)
    return file_error("cannot open directory", dir, errno);
  if (::fsync(fd.get()) != 0)
    return file_error("cannot fsync directory", dir, errno);
  return caf::none;
}

caf::error write_file_atomically(const std::string& path,
                                 const std::vector<std::string_view>& pieces,
                                 temporary_name naming) {
  auto tmp = temporary_path(path, naming);
  unique_fd fd{
      ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
  if (!fd)
    return file_error("cannot create", tmp, errno);
  auto fail = [&](caf::error err) {
    fd.close();
    ::unlink(tmp.c_str());
    return err;
  };
  for (auto piece : pieces)
    if (auto err = write_all(fd.get(), piece.data(), piece.size()))
      return fail(file_error("cannot write", tmp, err));
  if (::fsync(fd.get()) != 0)
    return fail(file_error("cannot fsync", tmp, errno));
  if (auto err = fd.close())
    return fail(file_error("cannot close", tmp, err));
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    return fail(file_error("cannot rename " + tmp + " to", path, errno));
  return fsync_directory(parent_of(path));
}

caf::error write_file_atomically(const std::string& path, const void* data,
                                 size_t size, temporary_name naming) {
  std::vector<std::string_view> pieces;
  if (size > 0)
    pieces.emplace_back(static_cast<const char*>(data), size);
  return write_file_atomically(path, pieces, naming);
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
    return file_error("cannot stat", dir, errno);
  auto parent = parent_of(dir);
  if (parent != dir)
    if (auto err = ensure_directory(parent))
      return err;
  // EEXIST: another process created it meanwhile, which is as good.
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
    return file_error("cannot create directory", dir, errno);
  return fsync_directory(parent);
}

bool is_temporary_file_name(std::string_view name) noexcept {
  constexpr std::string_view suffix = ".tmp";
  return name.size() >= suffix.size() &&
         name.substr(name.size() - suffix.size()) == suffix;
}

} // namespace sluice::io
