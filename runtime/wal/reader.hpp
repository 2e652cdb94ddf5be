#pragma once

#include <string>

#include <caf/expected.hpp>

#include "runtime/buffer.hpp"
#include "runtime/wal/handle.hpp"

namespace sluice::wal {

/// Reads one record back by handle: opens the segment, checks its header,
/// then the record's frame, length and CRC, and returns the payload. Thread
/// safe; needs no writer and may run while one appends (a handle only names
/// bytes that were complete when it was returned).
///
/// Errors: a handle that names no segment or an offset inside the header is
/// refused; a missing or unreadable file is io_failed; a record that does not
/// validate is corrupt_data; every message names the file and the offset.
caf::expected<buffer> read(const std::string& dir, const handle& h);

} // namespace sluice::wal
