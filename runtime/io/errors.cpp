#include "runtime/io/errors.hpp"

#include <cstring>

#include "runtime/error.hpp"

namespace sluice::io {

namespace {

// strerror_r() comes in a GNU flavour (returns the text, possibly not in the
// buffer) and an XSI one (fills the buffer, returns 0 or an error number);
// overload resolution picks whichever this libc declares.
[[maybe_unused]] const char* strerror_text(const char* result, const char*) {
  return result;
}

[[maybe_unused]] const char* strerror_text(int result, const char* buf) {
  return result == 0 ? buf : "unknown error";
}

} // namespace

std::string errno_text(int err) {
  char buf[256] = {};
  return strerror_text(::strerror_r(err, buf, sizeof(buf)), buf);
}

caf::error file_error(const std::string& what, const std::string& path,
                      int err) {
  return make_error(errc::io_failed,
                    what + " " + path + ": " + errno_text(err));
}

} // namespace sluice::io
