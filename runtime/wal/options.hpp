#pragma once

#include <cstdint>
#include <string>

namespace sluice::wal {

/// When an append reaches the disk.
enum class fsync_policy {
  /// append returns only after fdatasync: an acknowledged record survives a
  /// crash of the process and of the machine.
  always,
  /// The OS decides when to write back (tests and benchmarks): an
  /// acknowledged record survives a crash of the process, not of the machine.
  none,
};

/// How a writer lays out its log. A plain value.
struct options {
  /// The log directory; created (with parents) if missing.
  std::string dir;
  /// A segment covers [start, start + rolling_interval_ms) of the times passed
  /// to append; must be positive.
  int64_t rolling_interval_ms = 60000;
  fsync_policy sync = fsync_policy::always;
};

} // namespace sluice::wal
