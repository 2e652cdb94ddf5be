#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "runtime/buffer.hpp"
#include "runtime/wal/handle.hpp"

namespace sluice::wal {

/// What recover() did.
struct recovery_report {
  /// Valid records passed to the callback.
  size_t records = 0;
  /// One note per torn tail cut off or torn segment removed, naming the file,
  /// the offset and the reason.
  std::vector<std::string> cut;
};

/// Scans every segment of `dir` in time order and calls f(handle, payload)
/// for each valid record, in append order.
///
/// A torn tail (the last record of a segment incomplete, or failing its
/// checks with no valid record anywhere after it: nothing but EOF, zeros or
/// the debris of that one record) is cut off: the file is truncated (a
/// segment whose header is torn is removed) so later reads see a clean log,
/// and a note goes to `cut`. A bad record followed by a valid one, or a bad
/// segment header, is corruption: recovery stops with errc::corrupt_data
/// naming the file and the offset, after f saw every record before it.
/// Nothing is ever skipped.
///
/// A missing directory is an empty log (nothing was ever written). Run it
/// while no writer appends to `dir`: it would take the record being written
/// for a torn tail. `f` must not throw (an exception leaves the scan midway).
caf::expected<recovery_report>
recover(const std::string& dir,
        const std::function<void(const handle&, const buffer&)>& f);

} // namespace sluice::wal
