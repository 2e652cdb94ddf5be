#pragma once

#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "runtime/wal/format.hpp"

namespace sluice::wal {

/// One segment file of a log directory.
struct segment_info {
  std::string name;
  segment_range range;
};

/// The segments of `dir` in time order (start, then end); other files are
/// ignored. A missing directory holds no segments; an unreadable one is an
/// io_failed error naming it.
caf::expected<std::vector<segment_info>> list_segments(const std::string& dir);

/// Segment names listed in time order (for tests and tools); empty when the
/// directory is missing or unreadable.
std::vector<std::string> segments(const std::string& dir);

} // namespace sluice::wal
