#include "runtime/checkpoint/state_file.hpp"

#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "runtime/wal/crc32c.hpp"
#include "runtime/checkpoint/file_reader.hpp"
#include "runtime/checkpoint/little_endian.hpp"
#include "runtime/error.hpp"
#include "runtime/io/files.hpp"

namespace sluice {

namespace {

// Fixed header offsets; docs/checkpoint_format.md has the table.
constexpr size_t version_offset = 8;
constexpr size_t count_offset = 12;
constexpr size_t batch_offset = 16;
constexpr size_t node_length_offset = 24;
constexpr size_t fixed_header_size = 28;
constexpr size_t entry_size = 16; // u64 length, u64 records
constexpr size_t crc_size = 4;
constexpr std::string_view state_suffix = ".state";
static_assert(sizeof(state_file_magic) == 9);

bool plain(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
         || (c >= '0' && c <= '9') || c == '_';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1; // lower case is not what state_file_name writes
}

std::string hex(uint32_t x) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08x", x);
  return buf;
}

} // namespace

std::string state_file_name(const std::string& node_id, int64_t batch_ms) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string result;
  for (unsigned char c : node_id) {
    if (plain(c)) {
      result += static_cast<char>(c);
    } else {
      result += '%';
      result += digits[c >> 4];
      result += digits[c & 0x0F];
    }
  }
  result += '-';
  result += std::to_string(batch_ms);
  result += state_suffix;
  return result;
}

std::optional<state_file_key> parse_state_file_name(std::string_view name) {
  if (name.size() <= state_suffix.size()
      || name.substr(name.size() - state_suffix.size()) != state_suffix)
    return std::nullopt;
  name.remove_suffix(state_suffix.size());
  auto dash = name.find('-');
  if (dash == std::string_view::npos)
    return std::nullopt;
  state_file_key key;
  auto encoded = name.substr(0, dash);
  for (size_t i = 0; i < encoded.size(); ++i) {
    if (encoded[i] != '%') {
      if (!plain(static_cast<unsigned char>(encoded[i])))
        return std::nullopt;
      key.node_id += encoded[i];
      continue;
    }
    if (i + 2 >= encoded.size())
      return std::nullopt;
    auto hi = hex_value(encoded[i + 1]);
    auto lo = hex_value(encoded[i + 2]);
    if (hi < 0 || lo < 0)
      return std::nullopt;
    key.node_id += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  auto digits = name.substr(dash + 1);
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(),
                                   key.batch_ms);
  if (ec != std::errc{} || end != digits.data() + digits.size())
    return std::nullopt;
  // Only the one name state_file_name gives (no "%41" for 'A', no "007").
  if (state_file_name(key.node_id, key.batch_ms) != std::string{name} + ".state")
    return std::nullopt;
  return key;
}

caf::error write_state_checkpoint(const std::string& path,
                                  const std::string& node_id, int64_t batch_ms,
                                  const std::vector<state_partition>& parts) {
  if (node_id.size() > max_state_node_id_size)
    return make_error(errc::io_failed,
                      "cannot write " + path + ": a node id of "
                        + std::to_string(node_id.size())
                        + " bytes exceeds the limit of "
                        + std::to_string(max_state_node_id_size));
  auto parent = std::filesystem::path{path}.parent_path().string();
  if (!parent.empty())
    if (auto err = io::ensure_directory(parent))
      return err;
  std::string header(fixed_header_size + node_id.size()
                       + entry_size * parts.size(),
                     '\0');
  auto* out = reinterpret_cast<uint8_t*>(header.data());
  std::memcpy(out, state_file_magic, 8);
  le::put32(out + version_offset, state_file_version);
  le::put32(out + count_offset, static_cast<uint32_t>(parts.size()));
  le::put64(out + batch_offset, static_cast<uint64_t>(batch_ms));
  le::put32(out + node_length_offset, static_cast<uint32_t>(node_id.size()));
  std::memcpy(out + fixed_header_size, node_id.data(), node_id.size());
  auto* entry = out + fixed_header_size + node_id.size();
  for (auto& part : parts) {
    le::put64(entry, part.bytes.size());
    le::put64(entry + 8, part.records);
    entry += entry_size;
  }
  auto crc = crc32c(header.data(), header.size());
  std::vector<std::string_view> pieces;
  pieces.reserve(parts.size() + 2);
  pieces.emplace_back(header);
  for (auto& part : parts) {
    crc = crc32c_extend(crc, part.bytes.data(), part.bytes.size());
    if (!part.bytes.empty())
      pieces.emplace_back(part.bytes.view());
  }
  uint8_t trailer[crc_size];
  le::put32(trailer, crc);
  pieces.emplace_back(reinterpret_cast<const char*>(trailer), crc_size);
  return io::write_file_atomically(path, pieces);
}

caf::expected<std::vector<state_partition>>
read_state_checkpoint(const std::string& path, const std::string& node_id,
                      int64_t batch_ms) {
  auto fail = [&](const std::string& why) {
    return make_error(errc::corrupt_data, path + ": " + why);
  };
  file_reader in;
  if (auto err = in.open(path))
    return err;
  auto size = in.size();
  uint8_t fixed[fixed_header_size];
  // Magic first: a file that is not a state file at all says so, however
  // short it is.
  if (size >= 8) {
    if (auto err = in.read_at(0, fixed, 8))
      return err;
    if (std::memcmp(fixed, state_file_magic, 8) != 0)
      return fail("bad magic: not a sluice state checkpoint");
  }
  if (size < fixed_header_size + crc_size)
    return fail("truncated: " + std::to_string(size)
                + " bytes, a state checkpoint has at least "
                + std::to_string(fixed_header_size + crc_size));
  if (auto err = in.read_at(8, fixed + 8, fixed_header_size - 8))
    return err;
  auto count = le::get32(fixed + count_offset);
  auto node_size = le::get32(fixed + node_length_offset);
  // Every length is checked against the file's size before it sizes an
  // allocation: a corrupt header cannot make the reader allocate more.
  if (node_size > max_state_node_id_size)
    return fail("node id length " + std::to_string(node_size)
                + " exceeds the limit of "
                + std::to_string(max_state_node_id_size));
  uint64_t header_size = fixed_header_size + uint64_t{node_size}
                         + entry_size * uint64_t{count};
  if (header_size + crc_size > size)
    return fail("truncated: " + std::to_string(size)
                + " bytes, the header alone announces "
                + std::to_string(header_size + crc_size));
  std::string header(static_cast<size_t>(header_size), '\0');
  auto* head = reinterpret_cast<uint8_t*>(header.data());
  std::memcpy(head, fixed, fixed_header_size);
  if (auto err = in.read_at(fixed_header_size, head + fixed_header_size,
                            header.size() - fixed_header_size))
    return err;
  // total <= size holds throughout, so nothing below can overflow.
  uint64_t total = header_size + crc_size;
  std::vector<uint64_t> lengths(count);
  std::vector<state_partition> parts(count);
  for (uint32_t i = 0; i < count; ++i) {
    auto* entry = head + fixed_header_size + node_size + entry_size * i;
    lengths[i] = le::get64(entry);
    parts[i].records = le::get64(entry + 8);
    if (lengths[i] > size - total)
      return fail("truncated: " + std::to_string(size)
                  + " bytes, partition " + std::to_string(i)
                  + " ends past the end of the file");
    total += lengths[i];
  }
  if (total < size)
    return fail(std::to_string(size - total)
                + " bytes after the end the header announces");
  auto crc = crc32c(header.data(), header.size());
  auto offset = header_size;
  for (uint32_t i = 0; i < count; ++i) {
    auto [bytes, out] = buffer::allocate(static_cast<size_t>(lengths[i]));
    if (auto err = in.read_at(offset, out, static_cast<size_t>(lengths[i])))
      return err;
    crc = crc32c_extend(crc, out, static_cast<size_t>(lengths[i]));
    parts[i].bytes = std::move(bytes);
    offset += lengths[i];
  }
  uint8_t trailer[crc_size];
  if (auto err = in.read_at(offset, trailer, crc_size))
    return err;
  if (auto stored = le::get32(trailer); stored != crc)
    return fail("CRC mismatch: stored " + hex(stored) + ", computed "
                + hex(crc));
  if (auto version = le::get32(head + version_offset);
      version != state_file_version)
    return fail("unsupported format version " + std::to_string(version)
                + " (this build reads " + std::to_string(state_file_version)
                + ")");
  std::string stored_node{header.data() + fixed_header_size, node_size};
  auto stored_batch = static_cast<int64_t>(le::get64(head + batch_offset));
  if (stored_node != node_id || stored_batch != batch_ms)
    return fail("holds node '" + stored_node + "' batch "
                + std::to_string(stored_batch) + ", expected node '" + node_id
                + "' batch " + std::to_string(batch_ms));
  return parts;
}

} // namespace sluice
