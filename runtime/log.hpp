#pragma once

#include <sstream>
#include <string>

namespace sluice::log {

/// Severity of a log line; lines below the threshold are dropped.
enum class level { debug = 0, info = 1, warning = 2, error = 3, quiet = 4 };

/// Sets the process-wide threshold (default: info). Thread-safe.
void set_level(level x);

level current_level();

/// Parses "debug", "info", "warning", "error" or "quiet".
bool parse_level(const std::string& str, level& out);

/// Writes one line to stderr: time, level, component, text. Thread-safe;
/// lines of concurrent writers never interleave. CAF's own logger is compiled
/// out of Debian's build, so sluice logs through this.
void write(level lvl, const char* component, const std::string& text);

} // namespace sluice::log

#define SLUICE_LOG_IMPL(lvl, component, stream_expr)                           \
  do {                                                                         \
    if (static_cast<int>(lvl)                                                  \
        >= static_cast<int>(::sluice::log::current_level())) {                 \
      std::ostringstream sluice_log_os_;                                       \
      sluice_log_os_ << stream_expr;                                           \
      ::sluice::log::write(lvl, component, sluice_log_os_.str());              \
    }                                                                          \
  } while (false)

#define SLUICE_DEBUG(component, x)                                             \
  SLUICE_LOG_IMPL(::sluice::log::level::debug, component, x)
#define SLUICE_INFO(component, x)                                              \
  SLUICE_LOG_IMPL(::sluice::log::level::info, component, x)
#define SLUICE_WARN(component, x)                                              \
  SLUICE_LOG_IMPL(::sluice::log::level::warning, component, x)
#define SLUICE_ERROR(component, x)                                             \
  SLUICE_LOG_IMPL(::sluice::log::level::error, component, x)
