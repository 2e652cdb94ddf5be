#include "runtime/wal/recovery.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <unistd.h>

#include "runtime/error.hpp"
#include "runtime/io/errors.hpp"
#include "runtime/io/files.hpp"
#include "runtime/io/unique_fd.hpp"
#include "runtime/wal/format.hpp"
#include "runtime/wal/posix_io.hpp"
#include "runtime/wal/segments.hpp"

namespace sluice::wal {

namespace {

/// Bytes read from a segment at once while scanning it.
constexpr size_t window_size = 1u << 20;

caf::error corrupt(const std::string& path, uint64_t offset,
                   const std::string& why) {
  return make_error(errc::corrupt_data, "wal: " + why + " in " + path +
                                            " at offset " +
                                            std::to_string(offset));
}

bool all_zero(const uint8_t* p, size_t n) {
  return std::all_of(p, p + n, [](uint8_t b) { return b == 0; });
}

/// Sequential reads of one segment through a window, so a scan of small
/// records costs one pread per window instead of two per record. Owned by
/// one scan.
class window_reader {
public:
  window_reader(int fd, std::string path, uint64_t size)
    : fd_(fd),
      path_(std::move(path)),
      size_(size) {
    // nop
  }

  /// Makes [offset, offset + n) readable through `out`; the caller made sure
  /// the range lies inside the file. The pointer stays valid until the next
  /// call.
  caf::error fetch(uint64_t offset, size_t n, const uint8_t*& out) {
    if (offset < base_ || offset + n > base_ + len_) {
      auto want = static_cast<size_t>(
          std::min<uint64_t>(std::max(n, window_size), size_ - offset));
      buf_.resize(want);
      size_t got = 0;
      if (auto err = posix::read_all_at(fd_, buf_.data(), want, offset, got))
        return io::file_error("cannot read", path_, err);
      if (got < n)
        return make_error(errc::io_failed,
                          "wal: " + path_ + " shrank while being read (at " +
                              std::to_string(offset + got) + ")");
      base_ = offset;
      len_ = got;
    }
    out = buf_.data() + (offset - base_);
    return caf::none;
  }

private:
  int fd_;
  std::string path_;
  uint64_t size_;
  std::vector<uint8_t> buf_;
  uint64_t base_ = 0;
  size_t len_ = 0;
};

/// What lies after a bad record.
struct tail_facts {
  /// Every byte from the bad record to the end of the file is zero.
  bool all_zero = true;
  /// A complete record with a matching CRC starts somewhere after the bad
  /// record's first byte.
  bool valid_record_after = false;
  uint64_t valid_offset = 0;
};

/// Looks at [from, eof) for a valid record starting after `from` and for
/// non-zero bytes. This is what tells a torn tail from corruption: under
/// fsync_policy::always only the record being appended can be torn, and
/// nothing valid can follow it, whatever a crash did to its own bytes
/// (length, CRC, payload, or pages of zeros in between). A valid record after
/// a bad one means acknowledged data follows damaged data. Candidates are
/// found by their type byte, so zeros and most payload bytes are skipped by
/// memchr; only a plausible header costs a CRC.
caf::expected<tail_facts> scan_tail(int fd, const std::string& path,
                                    uint64_t from, uint64_t eof) {
  tail_facts result;
  std::vector<uint8_t> buf;
  std::vector<uint8_t> spill;
  for (uint64_t base = from; base < eof; base += window_size) {
    // Each window also holds the header of a record starting at its last byte.
    auto len = static_cast<size_t>(
        std::min<uint64_t>(window_size + frame_header_size, eof - base));
    buf.resize(len);
    size_t got = 0;
    if (auto err = posix::read_all_at(fd, buf.data(), len, base, got))
      return io::file_error("cannot read", path, err);
    if (got < len)
      return make_error(errc::io_failed,
                        "wal: " + path + " shrank while being read");
    auto own = std::min(len, window_size);
    if (result.all_zero && !all_zero(buf.data(), own))
      result.all_zero = false;
    // p: candidate record start, relative to base; its type byte is at p + 8.
    size_t p = base == from ? 1 : 0;
    while (p < own && p + frame_header_size <= len) {
      auto* type = static_cast<const uint8_t*>(
          std::memchr(buf.data() + p + frame_type_offset, record_type_full,
                      len - p - frame_type_offset));
      if (type == nullptr)
        break;
      p = static_cast<size_t>(type - buf.data()) - frame_type_offset;
      if (p >= own || p + frame_header_size > len)
        break;
      auto frame = decode_frame_header(buf.data() + p);
      auto start = base + p;
      if (plausible(frame) && start + frame_header_size + frame.length <= eof) {
        const uint8_t* payload = nullptr;
        auto in_buf = p + frame_header_size + frame.length <= len;
        if (in_buf) {
          payload = buf.data() + p + frame_header_size;
        } else {
          spill.resize(frame.length);
          if (auto err = posix::read_all_at(fd, spill.data(), frame.length,
                                            start + frame_header_size, got))
            return io::file_error("cannot read", path, err);
          if (got < frame.length)
            return make_error(errc::io_failed,
                              "wal: " + path + " shrank while being read");
          payload = spill.data();
        }
        if (crc_matches(buf.data() + p, payload, frame.length)) {
          result.valid_record_after = true;
          result.valid_offset = start;
          result.all_zero = false;
          return result;
        }
      }
      ++p;
    }
  }
  return result;
}

/// Truncates `path` to `offset` and makes the new length durable, so the
/// next recovery or append starts from a clean end.
caf::error cut_at(const std::string& path, uint64_t offset) {
  io::unique_fd fd{::open(path.c_str(), O_WRONLY | O_CLOEXEC)};
  if (!fd) {
    auto err = errno;
    return io::file_error("cannot open for cutting its torn tail", path, err);
  }
  if (::ftruncate(fd.get(), static_cast<off_t>(offset)) != 0) {
    auto err = errno;
    return io::file_error("cannot cut the torn tail of", path, err);
  }
  if (::fdatasync(fd.get()) != 0) {
    auto err = errno;
    return io::file_error("cannot fdatasync after cutting", path, err);
  }
  return caf::none;
}

/// Removes a segment whose header never made it to disk: no record in it can
/// have been acknowledged (the first record's fdatasync would have made the
/// header durable too).
caf::error remove_torn_segment(const std::string& dir,
                               const std::string& path) {
  if (::unlink(path.c_str()) != 0) {
    auto err = errno;
    return io::file_error("cannot remove torn segment", path, err);
  }
  return io::fsync_directory(dir);
}

/// Scans one segment; see recover().
caf::error
recover_segment(const std::string& dir, const std::string& name,
                const std::function<void(const handle&, const buffer&)>& f,
                recovery_report& report) {
  auto path = segment_path(dir, name);
  io::unique_fd fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (!fd) {
    auto err = errno;
    return io::file_error("cannot open segment", path, err);
  }
  auto ssize = posix::file_size(fd.get());
  if (ssize < 0) {
    auto err = errno;
    return io::file_error("cannot stat", path, err);
  }
  auto size = static_cast<uint64_t>(ssize);
  // The header: a crash between creating the file and the first record's
  // fdatasync may leave it empty, short, or zeros; anything else is damage.
  uint8_t expected[segment_header_size];
  encode_segment_header(expected);
  uint8_t header[segment_header_size] = {};
  auto head_len = static_cast<size_t>(std::min<uint64_t>(size, sizeof(header)));
  size_t got = 0;
  if (auto err = posix::read_all_at(fd.get(), header, head_len, 0, got))
    return io::file_error("cannot read", path, err);
  if (got < head_len)
    return make_error(errc::io_failed,
                      "wal: " + path + " shrank while being read");
  auto why = head_len < segment_header_size
                 ? std::optional<std::string>{"truncated segment header"}
                 : check_segment_header(header);
  if (why) {
    auto torn = false;
    if (head_len < segment_header_size) {
      torn = std::memcmp(header, expected, head_len) == 0 ||
             all_zero(header, head_len);
    } else {
      auto facts = scan_tail(fd.get(), path, 0, size);
      if (!facts)
        return std::move(facts.error());
      torn = facts->all_zero;
    }
    if (!torn)
      return corrupt(path, 0, *why);
    fd.close();
    if (auto err = remove_torn_segment(dir, path))
      return err;
    report.cut.push_back(path + ": removed the segment, its header is torn (" +
                         std::to_string(size) + " bytes)");
    return caf::none;
  }
  window_reader in{fd.get(), path, size};
  uint64_t pos = segment_header_size;
  while (pos < size) {
    std::string bad;
    auto left = size - pos;
    if (left < frame_header_size) {
      bad = "incomplete record header (" + std::to_string(left) + " bytes)";
    } else {
      const uint8_t* bytes = nullptr;
      if (auto err = in.fetch(pos, frame_header_size, bytes))
        return err;
      // A copy: the window may move when the payload is fetched.
      uint8_t frame_bytes[frame_header_size];
      std::memcpy(frame_bytes, bytes, sizeof(frame_bytes));
      auto frame = decode_frame_header(frame_bytes);
      if (frame.type != record_type_full) {
        bad = "bad record type " + std::to_string(frame.type);
      } else if (frame.length > max_record_size) {
        bad = "record length " + std::to_string(frame.length) +
              " above the maximum";
      } else if (frame.length > left - frame_header_size) {
        bad = "record of " + std::to_string(frame.length) +
              " bytes runs past the end of the file (" +
              std::to_string(left - frame_header_size) + " bytes left)";
      } else {
        if (auto err = in.fetch(pos + frame_header_size, frame.length, bytes))
          return err;
        if (crc_matches(frame_bytes, bytes, frame.length)) {
          f(handle{name, pos, frame.length},
            buffer::copy_of(bytes, frame.length));
          ++report.records;
          pos += frame_header_size + frame.length;
          continue;
        }
        bad = "CRC mismatch (record of " + std::to_string(frame.length) +
              " bytes)";
      }
    }
    // A bad record: the torn tail of a crash, or damage to data that was
    // acknowledged. Only what follows it tells them apart.
    auto facts = scan_tail(fd.get(), path, pos, size);
    if (!facts)
      return std::move(facts.error());
    if (facts->valid_record_after)
      return corrupt(path, pos,
                     bad + ", followed by a valid record at offset " +
                         std::to_string(facts->valid_offset) +
                         " (corruption, not a torn tail)");
    if (facts->all_zero)
      bad = "zero-filled tail";
    fd.close();
    if (auto err = cut_at(path, pos))
      return err;
    report.cut.push_back(path + ": cut " + std::to_string(size - pos) +
                         " bytes at offset " + std::to_string(pos) + ": " +
                         bad);
    return caf::none;
  }
  return caf::none;
}

} // namespace

caf::expected<recovery_report>
recover(const std::string& dir,
        const std::function<void(const handle&, const buffer&)>& f) {
  auto xs = list_segments(dir);
  if (!xs)
    return std::move(xs.error());
  recovery_report report;
  for (auto& x : *xs)
    if (auto err = recover_segment(dir, x.name, f, report))
      return err;
  return report;
}

} // namespace sluice::wal
