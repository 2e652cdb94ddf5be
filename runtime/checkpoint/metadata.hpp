#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <caf/expected.hpp>

#include "runtime/buffer.hpp"

namespace sluice {

// The metadata checkpoint in memory and its file image. Spec (framing,
// fields, history): docs/checkpoint_format.md. Plain values: copy, move and
// read them from any thread; encode/decode are pure functions.

/// The format version written by this build: the header's version and the
/// schema's `formatVersion`. Version 2 added recoveryHorizon, config and
/// writtenAt (messages/checkpoint.capnp).
constexpr uint32_t checkpoint_format_version = 2;

/// The oldest version this build still reads.
constexpr uint32_t oldest_checkpoint_format_version = 1;

/// First 8 bytes of every metadata checkpoint file (written without the NUL).
inline constexpr char checkpoint_magic[] = "SLUICECK";

/// Bytes before the Cap'n Proto body: magic, version, flags, length, CRC.
/// A multiple of 8, so the body of an aligned file image is aligned too.
constexpr size_t checkpoint_header_size = 24;

/// Largest body decode_checkpoint accepts (also the Cap'n Proto traversal
/// limit): a corrupt length can never make a reader allocate more.
constexpr size_t max_checkpoint_body_size = size_t{64} << 20;

/// One graph node.
struct checkpoint_operator {
  std::string id;
  std::string op;
  int64_t slide_ms = 0;
  int64_t window_ms = 0;
  bool stateful = false;
  int64_t checkpoint_interval_ms = 0;
};

/// The newest data checkpoint of one stateful node.
struct state_checkpoint_ref {
  std::string node_id;
  int64_t batch_ms = 0;
  std::string file; ///< as given by the writer (checkpoint_dir::state_path)
  uint32_t partitions = 0;
};

/// A directory stream's files already taken by a batch.
struct directory_position {
  std::string node_id;
  std::vector<std::string> seen;
};

/// What a restarted driver needs to resume its schedule.
struct checkpoint_metadata {
  /// On decode: the version the file was written with. encode_checkpoint
  /// always writes checkpoint_format_version, whatever this says.
  uint32_t format_version = checkpoint_format_version;
  int64_t checkpoint_time_ms = 0;   ///< the batch time this was written for
  int64_t batch_interval_ms = 0;
  uint64_t graph_fingerprint = 0;
  std::vector<checkpoint_operator> operators;
  int64_t last_completed_ms = -1;   ///< -1: none yet
  int64_t last_generated_ms = -1;   ///< -1: none yet
  std::vector<int64_t> pending_ms;  ///< generated, not completed
  /// Earliest batch a recovery from this checkpoint may re-run; -1: unknown
  /// (also what a version 1 file reads as).
  int64_t recovery_horizon_ms = -1;
  std::vector<state_checkpoint_ref> states;
  std::vector<directory_position> directories;
  std::vector<std::pair<std::string, std::string>> config; ///< key, value as given
  int64_t written_at_ms = 0;        ///< wall clock; 0 in version 1 files
};

bool operator==(const checkpoint_operator& x, const checkpoint_operator& y);
bool operator==(const state_checkpoint_ref& x, const state_checkpoint_ref& y);
bool operator==(const directory_position& x, const directory_position& y);
bool operator==(const checkpoint_metadata& x, const checkpoint_metadata& y);

inline bool operator!=(const checkpoint_metadata& x,
                       const checkpoint_metadata& y) {
  return !(x == y);
}

/// The complete file image of `meta`: a 24-byte header (magic, version,
/// flags, body length, CRC32C) and the Cap'n Proto message.
buffer encode_checkpoint(const checkpoint_metadata& meta);

/// Validates and decodes a file image. Every failure is an
/// errc::corrupt_data error whose text starts with `name_for_errors` and says
/// what is wrong (too short, bad magic, unsupported version, length or CRC
/// mismatch, undecodable body). Never throws.
caf::expected<checkpoint_metadata>
decode_checkpoint(const buffer& bytes, const std::string& name_for_errors);

} // namespace sluice
