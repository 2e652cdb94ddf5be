#pragma once

#include <cstdint>
#include <string>

#include "runtime/clock.hpp"

namespace sluice {

/// File name of partition `p` inside a batch's output directory: part-NNNNN.
std::string part_file_name(uint32_t p);

/// Writes one output partition atomically: the bytes go to a temporary name
/// in `dir` (created if missing), are fsync'ed, then renamed to
/// part-NNNNN and the directory is fsync'ed. A re-run of the same batch
/// therefore leaves each part file exactly once and never a torn one.
/// Throws std::runtime_error naming the path and the OS error on failure
/// (a full disk included); the temporary file is removed.
void write_part_file(const std::string& dir, uint32_t p,
                     const std::string& content);

/// Spark's layout: "<prefix>-<batch ms>[.<suffix>]".
std::string batch_dir(const std::string& prefix, const std::string& suffix,
                      time_ms t);

} // namespace sluice
