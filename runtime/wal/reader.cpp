#include "runtime/wal/reader.hpp"

#include <cerrno>

#include <fcntl.h>

#include "runtime/error.hpp"
#include "runtime/io/errors.hpp"
#include "runtime/io/unique_fd.hpp"
#include "runtime/wal/format.hpp"
#include "runtime/wal/posix_io.hpp"

namespace sluice::wal {

namespace {

caf::error corrupt(const std::string& path, uint64_t offset,
                   const std::string& why) {
  return make_error(errc::corrupt_data, "wal: " + why + " in " + path +
                                            " at offset " +
                                            std::to_string(offset));
}

} // namespace

caf::expected<buffer> read(const std::string& dir, const handle& h) {
  // A handle comes from outside (a message, a checkpoint): never let its
  // segment name point elsewhere, e.g. "../x".
  if (!parse_segment_name(h.segment))
    return make_error(errc::refused, "wal: handle " + to_string(h) +
                                         " names no segment of " + dir);
  if (h.offset < segment_header_size || h.length > max_record_size)
    return make_error(errc::refused, "wal: handle " + to_string(h) +
                                         " cannot name a record in " + dir);
  auto path = segment_path(dir, h.segment);
  io::unique_fd fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (!fd) {
    auto err = errno;
    return io::file_error("cannot open segment", path, err);
  }
  uint8_t seg_header[segment_header_size];
  size_t got = 0;
  if (auto err =
          posix::read_all_at(fd.get(), seg_header, sizeof(seg_header), 0, got))
    return io::file_error("cannot read", path, err);
  if (got < sizeof(seg_header))
    return corrupt(path, 0, "truncated segment header");
  if (auto why = check_segment_header(seg_header))
    return corrupt(path, 0, *why);
  uint8_t header[frame_header_size];
  if (auto err =
          posix::read_all_at(fd.get(), header, sizeof(header), h.offset, got))
    return io::file_error("cannot read", path, err);
  if (got < sizeof(header))
    return corrupt(path, h.offset, "file ends inside the record header");
  auto frame = decode_frame_header(header);
  if (frame.type != record_type_full)
    return corrupt(path, h.offset,
                   "bad record type " + std::to_string(frame.type));
  if (frame.length != h.length)
    return corrupt(path, h.offset,
                   "record length " + std::to_string(frame.length) +
                       " where the handle says " + std::to_string(h.length));
  auto [result, out] = buffer::allocate(h.length);
  if (auto err = posix::read_all_at(fd.get(), out, h.length,
                                    h.offset + frame_header_size, got))
    return io::file_error("cannot read", path, err);
  if (got < h.length)
    return corrupt(path, h.offset,
                   "file ends inside the record's payload (" +
                       std::to_string(got) + " of " + std::to_string(h.length) +
                       " bytes)");
  if (!crc_matches(header, out, h.length))
    return corrupt(path, h.offset, "CRC mismatch");
  return std::move(result);
}

} // namespace sluice::wal
