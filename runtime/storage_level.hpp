#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace sluice {

/// How a persisted partition is kept (Spark's StorageLevel).
///
/// - `use_disk`: the block may be spilled to a file in its BlockManager's
///   local directory when the node's memory budget is exceeded (least
///   recently used first); without it the block stays in memory whatever
///   the budget says (memory-only blocks are never spilled).
/// - `serialized`: the block is kept encoded (one `wire::Block`); otherwise
///   the node that computed it keeps the decoded records and encodes them
///   only when bytes are needed (a remote reader, the replica, a spill).
/// - `replication`: 1, or 2 for a second copy on another node, which tasks
///   read when the first is lost.
///
/// A plain value; `name` points to a string literal.
struct storage_level {
  bool use_disk = false;
  bool serialized = true;
  uint32_t replication = 1;
  const char* name = "MEMORY_ONLY_SER";

  static constexpr storage_level memory_only() {
    return {false, false, 1, "MEMORY_ONLY"};
  }
  static constexpr storage_level memory_only_2() {
    return {false, false, 2, "MEMORY_ONLY_2"};
  }
  static constexpr storage_level memory_only_ser() {
    return {false, true, 1, "MEMORY_ONLY_SER"};
  }
  static constexpr storage_level memory_only_ser_2() {
    return {false, true, 2, "MEMORY_ONLY_SER_2"};
  }
  static constexpr storage_level memory_and_disk() {
    return {true, false, 1, "MEMORY_AND_DISK"};
  }
  static constexpr storage_level memory_and_disk_2() {
    return {true, false, 2, "MEMORY_AND_DISK_2"};
  }
  static constexpr storage_level memory_and_disk_ser() {
    return {true, true, 1, "MEMORY_AND_DISK_SER"};
  }
  static constexpr storage_level memory_and_disk_ser_2() {
    return {true, true, 2, "MEMORY_AND_DISK_SER_2"};
  }

  /// The named level with these properties (levels travel in messages as
  /// their three fields); throws std::invalid_argument unless replication
  /// is 1 or 2.
  static storage_level of(bool use_disk, bool serialized, uint32_t replication) {
    if (replication < 1 || replication > 2)
      throw std::invalid_argument("storage level with replication "
                                  + std::to_string(replication)
                                  + " (must be 1 or 2)");
    storage_level result;
    if (use_disk)
      result = serialized ? memory_and_disk_ser() : memory_and_disk();
    else
      result = serialized ? memory_only_ser() : memory_only();
    if (replication == 2)
      result = of_2(result);
    return result;
  }

  friend bool operator==(const storage_level& x, const storage_level& y) {
    return x.use_disk == y.use_disk && x.serialized == y.serialized
           && x.replication == y.replication;
  }

  friend bool operator!=(const storage_level& x, const storage_level& y) {
    return !(x == y);
  }

private:
  static constexpr storage_level of_2(storage_level x) {
    if (x.use_disk)
      return x.serialized ? memory_and_disk_ser_2() : memory_and_disk_2();
    return x.serialized ? memory_only_ser_2() : memory_only_2();
  }
};

} // namespace sluice
