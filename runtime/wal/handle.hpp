#pragma once

#include <cstdint>
#include <string>

namespace sluice::wal {

/// Where one record lives: reads it back without scanning.
///
/// A plain value (copy it freely, across threads and into messages). It stays
/// valid as long as its segment exists: delete_older_than and a recovery cut
/// are the only things that end it.
struct handle {
  /// File name of the segment inside the log directory (no directory part).
  std::string segment;
  /// Byte offset of the start of the record's frame inside the segment.
  uint64_t offset = 0;
  /// Payload length in bytes (the frame adds wal::frame_header_size).
  uint32_t length = 0;
};

inline bool operator==(const handle& x, const handle& y) {
  return x.segment == y.segment && x.offset == y.offset && x.length == y.length;
}

inline bool operator!=(const handle& x, const handle& y) {
  return !(x == y);
}

/// "segment@offset+length", for logs and error messages.
std::string to_string(const handle& x);

} // namespace sluice::wal
