#include "runtime/wal/format.hpp"

#include <cstring>
#include <limits>

#include "runtime/wal/crc32c.hpp"

namespace sluice::wal {

namespace {

constexpr const char* name_prefix = "log-";

/// Parses a non-empty run of decimal digits that fits an int64_t.
std::optional<int64_t> parse_decimal(const std::string& s) {
  if (s.empty() || s.size() > 19)
    return std::nullopt;
  int64_t result = 0;
  for (auto c : s) {
    if (c < '0' || c > '9')
      return std::nullopt;
    auto digit = c - '0';
    if (result > (std::numeric_limits<int64_t>::max() - digit) / 10)
      return std::nullopt;
    result = result * 10 + digit;
  }
  return result;
}

/// CRC of the bytes a frame's CRC covers: length, type, payload.
uint32_t frame_crc(const uint8_t* header, const void* payload, size_t size) {
  auto crc = crc32c(header + frame_length_offset,
                    frame_header_size - frame_length_offset);
  return crc32c_extend(crc, payload, size);
}

} // namespace

std::string segment_name(segment_range range) {
  return name_prefix + std::to_string(range.start_ms) + "-" +
         std::to_string(range.end_ms);
}

std::optional<segment_range> parse_segment_name(const std::string& name) {
  auto prefix_len = std::strlen(name_prefix);
  if (name.compare(0, prefix_len, name_prefix) != 0)
    return std::nullopt;
  auto dash = name.find('-', prefix_len);
  if (dash == std::string::npos)
    return std::nullopt;
  auto start = parse_decimal(name.substr(prefix_len, dash - prefix_len));
  auto end = parse_decimal(name.substr(dash + 1));
  if (!start || !end || *end <= *start)
    return std::nullopt;
  // Only the canonical spelling: "log-01-2" would otherwise name the same
  // range as "log-1-2" and two files would claim one time slot.
  segment_range range{*start, *end};
  if (segment_name(range) != name)
    return std::nullopt;
  return range;
}

std::string segment_path(const std::string& dir, const std::string& name) {
  return dir + "/" + name;
}

void encode_segment_header(uint8_t* out) {
  std::memcpy(out, segment_magic, sizeof(segment_magic));
  store_u32_le(out + 8, format_version);
  store_u32_le(out + 12, crc32c_mask(crc32c(out, 12)));
}

std::optional<std::string> check_segment_header(const uint8_t* in) {
  if (std::memcmp(in, segment_magic, sizeof(segment_magic)) != 0)
    return "bad segment magic (not a sluice WAL segment)";
  if (crc32c_unmask(load_u32_le(in + 12)) != crc32c(in, 12))
    return "segment header CRC mismatch";
  auto version = load_u32_le(in + 8);
  if (version != format_version)
    return "unsupported format version " + std::to_string(version) +
           " (this build reads " + std::to_string(format_version) + ")";
  return std::nullopt;
}

void encode_frame_header(uint8_t* out, const void* payload, uint32_t size) {
  store_u32_le(out + frame_length_offset, size);
  out[frame_type_offset] = record_type_full;
  store_u32_le(out + frame_crc_offset,
               crc32c_mask(frame_crc(out, payload, size)));
}

frame_header decode_frame_header(const uint8_t* in) {
  frame_header result;
  result.masked_crc = load_u32_le(in + frame_crc_offset);
  result.length = load_u32_le(in + frame_length_offset);
  result.type = in[frame_type_offset];
  return result;
}

bool crc_matches(const uint8_t* header, const void* payload, size_t size) {
  return crc32c_unmask(load_u32_le(header + frame_crc_offset)) ==
         frame_crc(header, payload, size);
}

} // namespace sluice::wal
