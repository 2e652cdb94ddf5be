#pragma once

// The on-disk format of a WAL segment: names, the segment header and the
// record frame. docs/wal_format.md is the specification; this file is its
// one implementation, shared by the writer, the reader and recovery.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace sluice::wal {

/// Segment header: magic (8 bytes) | format version (u32 LE) | masked CRC32C
/// of the 12 bytes before it (u32 LE).
constexpr size_t segment_header_size = 16;

/// The first 8 bytes of every segment.
constexpr char segment_magic[8] = {'S', 'L', 'W', 'A', 'L', 'S', 'E', 'G'};

/// The version this code writes and the only one it reads.
constexpr uint32_t format_version = 1;

/// Record frame: masked CRC32C (u32 LE) | payload length (u32 LE) |
/// type (u8) | payload. The CRC covers every byte after it: length, type
/// and payload.
constexpr size_t frame_header_size = 9;

/// Offsets inside the frame header.
constexpr size_t frame_crc_offset = 0;
constexpr size_t frame_length_offset = 4;
constexpr size_t frame_type_offset = 8;

/// The only record type so far: a whole record in one frame. Zero is never a
/// type, so a zero-filled region never looks like a record.
constexpr uint8_t record_type_full = 1;

/// Largest payload an append takes (and recovery believes): 256 MiB.
constexpr uint32_t max_record_size = 256u << 20;

/// The time range a segment covers, from its file name.
struct segment_range {
  int64_t start_ms = 0;
  int64_t end_ms = 0;
};

/// "log-<start_ms>-<end_ms>", decimal, no padding.
std::string segment_name(segment_range range);

/// The range of a segment file name; nothing for any other name (a name that
/// only looks similar, a negative or empty range, a stray temporary file).
std::optional<segment_range> parse_segment_name(const std::string& name);

/// `dir` + "/" + `name`.
std::string segment_path(const std::string& dir, const std::string& name);

/// Writes the 16 header bytes of a new segment to `out`.
void encode_segment_header(uint8_t* out);

/// Checks a segment header; returns nothing when valid, else why not.
std::optional<std::string> check_segment_header(const uint8_t* in);

/// Little-endian fixed-width integers, independent of the host's byte order.
inline void store_u32_le(uint8_t* out, uint32_t x) {
  out[0] = static_cast<uint8_t>(x);
  out[1] = static_cast<uint8_t>(x >> 8);
  out[2] = static_cast<uint8_t>(x >> 16);
  out[3] = static_cast<uint8_t>(x >> 24);
}

inline uint32_t load_u32_le(const uint8_t* in) {
  return static_cast<uint32_t>(in[0]) | (static_cast<uint32_t>(in[1]) << 8) |
         (static_cast<uint32_t>(in[2]) << 16) |
         (static_cast<uint32_t>(in[3]) << 24);
}

/// Fills the frame header of a full record carrying `size` bytes at `payload`.
void encode_frame_header(uint8_t* out, const void* payload, uint32_t size);

/// The fields of a frame header, not yet validated.
struct frame_header {
  uint32_t masked_crc = 0;
  uint32_t length = 0;
  uint8_t type = 0;
};

frame_header decode_frame_header(const uint8_t* in);

/// True if the header's type and length can start a record (it says nothing
/// about the payload).
inline bool plausible(const frame_header& x) {
  return x.type == record_type_full && x.length <= max_record_size;
}

/// True if the CRC stored in `header` matches its length, type and `payload`.
bool crc_matches(const uint8_t* header, const void* payload, size_t size);

} // namespace sluice::wal
