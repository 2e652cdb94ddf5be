#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "runtime/buffer.hpp"

namespace sluice {

// Data checkpoints: one file per stateful node and batch holding every
// state partition of that batch. Layout: docs/checkpoint_format.md. Free
// functions without shared state; any thread, different paths.

/// First 8 bytes of every state file (written without the NUL).
inline constexpr char state_file_magic[] = "SLUICEST";

constexpr uint32_t state_file_version = 1;

/// Longest node id a state file holds.
constexpr size_t max_state_node_id_size = 4096;

/// One partition of a stateful node's state (the encoded block bytes as
/// held by a BlockManager).
struct state_partition {
  buffer bytes;
  uint64_t records = 0;
};

/// "<node id, percent-encoded>-<batch ms>.state": node ids may hold '/',
/// ':' and anything else, so every byte outside [A-Za-z0-9_] becomes %XX
/// (also '-' and '.', which makes the name unambiguous to parse).
std::string state_file_name(const std::string& node_id, int64_t batch_ms);

/// The node id and batch of a name made by state_file_name; nullopt for any
/// other name (temporary files included).
struct state_file_key {
  std::string node_id;
  int64_t batch_ms = 0;
};
std::optional<state_file_key> parse_state_file_name(std::string_view name);

/// Writes the data checkpoint `path` atomically (write_file_atomically:
/// temp file, fsync, rename, fsync directory), creating its directory if
/// needed: node id, batch time, partition count, per partition its length
/// and record count, the partitions, and a CRC32C over everything before it.
caf::error write_state_checkpoint(const std::string& path,
                                  const std::string& node_id, int64_t batch_ms,
                                  const std::vector<state_partition>& parts);

/// Reads and validates the data checkpoint `path`, which must hold
/// `node_id`'s state of batch `batch_ms` (what the metadata checkpoint
/// said). Errors name the file: errc::not_found when it is missing,
/// errc::corrupt_data when it is truncated, fails its CRC or holds another
/// node or batch, errc::io_failed when it cannot be read. Every partition
/// is its own aligned buffer, readable as Cap'n Proto without a copy.
caf::expected<std::vector<state_partition>>
read_state_checkpoint(const std::string& path, const std::string& node_id,
                      int64_t batch_ms);

} // namespace sluice
