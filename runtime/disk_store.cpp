#include "runtime/disk_store.hpp"

#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/block.hpp"
#include "runtime/hash.hpp"
#include "runtime/io/errors.hpp"
#include "runtime/io/files.hpp"
#include "runtime/io/unique_fd.hpp"

namespace sluice {

namespace fs = std::filesystem;

namespace {

constexpr char magic[8] = {'S', 'L', 'U', 'I', 'C', 'E', 'B', 'K'};

void put_u64(uint8_t* out, uint64_t x) {
  for (int i = 0; i < 8; ++i)
    out[i] = static_cast<uint8_t>(x >> (8 * i));
}

uint64_t get_u64(const uint8_t* in) {
  uint64_t x = 0;
  for (int i = 0; i < 8; ++i)
    x |= static_cast<uint64_t>(in[i]) << (8 * i);
  return x;
}

/// Reads up to `n` bytes; returns how many (fewer only at end of file), or
/// -1 with errno set.
ssize_t read_all(int fd, uint8_t* data, size_t n) {
  size_t done = 0;
  while (done < n) {
    auto k = ::read(fd, data + done, n - done);
    if (k < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    if (k == 0)
      break;
    done += static_cast<size_t>(k);
  }
  return static_cast<ssize_t>(done);
}

} // namespace

caf::expected<std::unique_ptr<disk_store>>
disk_store::create(const std::string& base, const std::string& tag) {
  std::error_code ec;
  fs::path root = base.empty() ? fs::temp_directory_path(ec) : fs::path{base};
  if (ec)
    return make_error(errc::io_failed,
                      "no temporary directory for spill files: " + ec.message());
  fs::create_directories(root, ec);
  if (ec)
    return make_error(errc::io_failed, "cannot create the block spill directory "
                                         + root.string() + ": " + ec.message());
  std::string safe_tag;
  for (auto c : tag)
    safe_tag += std::isalnum(static_cast<unsigned char>(c)) || c == '-' ? c : '_';
  auto pattern = (root / ("sluice-" + safe_tag + "-XXXXXX")).string();
  std::vector<char> buf{pattern.begin(), pattern.end()};
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr)
    return io::file_error("cannot create a spill directory in", root.string(),
                          errno);
  return std::unique_ptr<disk_store>{new disk_store{std::string{buf.data()}}};
}

disk_store::disk_store(std::string dir) : dir_(std::move(dir)) {
}

disk_store::~disk_store() {
  std::error_code ec;
  fs::remove_all(dir_, ec); // best effort: a leftover temp dir harms nobody
}

std::string disk_store::path_for(const std::string& id, uint64_t generation) const {
  static constexpr char hex[] = "0123456789abcdef";
  std::string name;
  name.reserve(id.size() + 24);
  for (auto c : id) {
    auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '.' || c == '-') {
      name += c;
    } else {
      name += '_';
      name += hex[u >> 4];
      name += hex[u & 0xf];
    }
  }
  return dir_ + "/" + name + "~" + std::to_string(generation) + ".blk";
}

caf::expected<uint64_t> disk_store::write(const std::string& path,
                                          const std::string& id,
                                          const buffer& bytes,
                                          uint64_t records) const {
  uint8_t header[header_size];
  std::memcpy(header, magic, 8);
  put_u64(header + 8, bytes.size());
  put_u64(header + 16, records);
  put_u64(header + 24, stable_hash(bytes.view()));
  put_u64(header + 32, stable_hash(id));
  io::unique_fd fd{
    ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)};
  if (!fd)
    return io::file_error("cannot create spill file", path, errno);
  auto err = io::write_all(fd.get(), header, header_size);
  if (err == 0)
    err = io::write_all(fd.get(), bytes.data(), bytes.size());
  if (err != 0) {
    ::unlink(path.c_str());
    return io::file_error("cannot write spill file", path, err);
  }
  return static_cast<uint64_t>(header_size + bytes.size());
}

caf::expected<buffer> disk_store::read(const std::string& path,
                                       const std::string& id,
                                       uint64_t records) const {
  auto corrupt = [&](const std::string& why) {
    return make_error(errc::corrupt_data,
                      "spilled block " + id + ": file " + path + " " + why);
  };
  io::unique_fd fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (!fd) {
    auto err = errno;
    if (err == ENOENT)
      return corrupt("is missing");
    return io::file_error("cannot open spill file of block " + id + ":",
                          path, err);
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0)
    return io::file_error("cannot stat spill file of block " + id + ":",
                          path, errno);
  auto file_size = static_cast<uint64_t>(st.st_size);
  uint8_t header[header_size];
  auto got = read_all(fd.get(), header, header_size);
  if (got < 0)
    return io::file_error("cannot read spill file of block " + id + ":",
                          path, errno);
  if (static_cast<size_t>(got) < header_size)
    return corrupt("is truncated (" + std::to_string(file_size)
                   + " bytes, shorter than its header)");
  if (std::memcmp(header, magic, 8) != 0)
    return corrupt("is not a sluice spill file");
  auto length = get_u64(header + 8);
  auto file_records = get_u64(header + 16);
  auto checksum = get_u64(header + 24);
  if (get_u64(header + 32) != stable_hash(id))
    return corrupt("belongs to another block");
  if (file_size != header_size + length)
    return corrupt("has " + std::to_string(file_size) + " bytes, its header says "
                   + std::to_string(header_size + length)
                   + (file_size < header_size + length ? " (truncated)" : ""));
  if (file_records != records)
    return corrupt("holds " + std::to_string(file_records)
                   + " records, the store expects " + std::to_string(records));
  auto [result, data] = buffer::allocate(static_cast<size_t>(length));
  got = read_all(fd.get(), data, static_cast<size_t>(length));
  if (got < 0)
    return io::file_error("cannot read spill file of block " + id + ":",
                          path, errno);
  if (static_cast<uint64_t>(got) != length)
    return corrupt("is truncated (" + std::to_string(got) + " of "
                   + std::to_string(length) + " payload bytes)");
  if (stable_hash(result.view()) != checksum)
    return corrupt("fails its checksum");
  // The checksum catches damage; the framing check catches a writer bug.
  if (auto err = check_block(result, records, id))
    return corrupt("holds an invalid block (" + describe(err) + ")");
  return result;
}

void disk_store::remove(const std::string& path) const noexcept {
  ::unlink(path.c_str());
}

} // namespace sluice
