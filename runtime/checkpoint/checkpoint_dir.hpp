#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "runtime/checkpoint/metadata.hpp"

namespace sluice {

/// Retention of metadata checkpoints (docs/contracts.md, "Durable files").
constexpr size_t default_checkpoint_keep = 10;

/// "checkpoint-<time>" for `seq` 0, else "checkpoint-<time>-<seq>" (a
/// second checkpoint for the same batch time never replaces the first).
std::string checkpoint_file_name(int64_t time_ms, uint32_t seq);

/// The (time, seq) of a name made by checkpoint_file_name; nullopt for any
/// other name, temporary files included.
std::optional<std::pair<int64_t, uint32_t>>
parse_checkpoint_file_name(std::string_view name);

/// The metadata checkpoints of one checkpoint directory: files
/// <dir>/checkpoint-<checkpoint_time_ms>[-<seq>], ordered by time, then seq;
/// and the data checkpoints (state files) in <dir>/state/.
///
/// Lifetime/owner: one per driver (the JobGenerator), for as long as it
/// runs; a restarted driver makes a new one over the same directory and
/// finds its predecessor's files. Concurrency: not thread-safe; it is the
/// only writer of metadata checkpoints in its directory (state files are
/// written by others through write_state_checkpoint and only deleted here).
/// Nothing is cached: every call reads the directory, so files changed by
/// hand or by a previous driver are always seen. Paths it returns are
/// `dir() + "/" + name`.
class checkpoint_dir {
public:
  /// `keep` below 1 counts as 1: the checkpoint just written is never
  /// deleted.
  explicit checkpoint_dir(std::string dir,
                          size_t keep = default_checkpoint_keep);

  /// Writes `meta` as checkpoint-<meta.checkpoint_time_ms>[-<seq>]
  /// atomically (write_file_atomically: <name>.<pid>.<n>.tmp, fsync,
  /// rename, fsync the directory), creating the directory if needed. Then,
  /// and only then, cleans up: deletes all but the newest `keep` checkpoint
  /// files, and for every node that the valid kept checkpoints reference,
  /// the state files (and temporaries) of batches older than the oldest
  /// referenced one; never a state file of a node no kept checkpoint
  /// references, nor one newer than every reference (it may be about to be
  /// referenced), nor a temporary newer than the oldest kept checkpoint. An
  /// error means the checkpoint was not written (errc::io_failed naming the
  /// file; also for a negative time, or a checkpoint over
  /// max_checkpoint_body_size, which load_newest could not read back); a
  /// failed deletion is only logged: the checkpoint is durable by then and
  /// the next write retries the cleanup.
  caf::error write(const checkpoint_metadata& meta);

  struct loaded {
    checkpoint_metadata meta;
    std::string file;                 ///< the path it was read from
    std::vector<std::string> skipped; ///< "<file>: <why>", newest first
  };

  /// Why a checkpoint that validates still cannot be used (say, a state
  /// file it names is damaged); empty when it can.
  using usable_fn = std::function<std::string(const checkpoint_metadata& meta,
                                              const std::string& file)>;

  /// The newest checkpoint that validates (framing, CRC, decoding, and the
  /// time in its name matching its content) and that `usable` (if given)
  /// accepts; newer files that do not validate or that `usable` refuses are
  /// listed in `skipped` with the reason, as are stray temporary files (a
  /// write that crashed), which are otherwise ignored. nullopt when the
  /// directory holds no checkpoint file at all (or does not exist); an
  /// errc::corrupt_data error naming every file and why when files exist
  /// but none validates (or none is usable); errc::io_failed when the
  /// directory cannot be read. Logs nothing: the caller reports `skipped`
  /// (a recovery that passes over a damaged checkpoint should say so
  /// loudly).
  caf::expected<std::optional<loaded>>
  load_newest(const usable_fn& usable = nullptr) const;

  /// Checkpoint files, newest first (empty if the directory cannot be read).
  std::vector<std::string> files() const;

  const std::string& dir() const noexcept {
    return dir_;
  }

  size_t keep() const noexcept {
    return keep_;
  }

  /// Where the data checkpoint of `node_id` at `batch_ms` lives:
  /// <dir>/state/<state_file_name(node_id, batch_ms)>. Cleanup finds state
  /// files by this name only.
  std::string state_path(const std::string& node_id, int64_t batch_ms) const;

  /// <dir>/state
  std::string state_dir() const;

private:
  struct entry {
    int64_t time_ms;
    uint32_t seq;
    std::string name;
  };

  /// Checkpoint files newest first, and the names of stray temporaries.
  caf::error list(std::vector<entry>& files,
                  std::vector<std::string>& temporaries) const;

  std::string path_of(const std::string& name) const;

  /// The retention and state cleanup of write(); logs what it cannot do.
  void clean_up();

  void clean_up_states(const std::vector<entry>& kept);

  std::string dir_;
  size_t keep_;
};

} // namespace sluice
