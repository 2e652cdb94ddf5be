#pragma once

// System call failures as text and as sluice errors. Free functions without
// shared state: any thread may call them.

#include <string>

#include <caf/error.hpp>

namespace sluice::io {

/// The text of the errno value `err` ("No such file or directory").
/// strerror() may share one buffer between threads and the tasks, receivers
/// and writers that report I/O failures run on many; this never shares one.
std::string errno_text(int err);

/// "<what> <path>: <errno_text(err)>" as an errc::io_failed error, so that
/// every I/O failure names the file it concerns and the reason the OS gave.
caf::error file_error(const std::string& what, const std::string& path,
                      int err);

} // namespace sluice::io
