#pragma once

#include <cstdint>
#include <string>

#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/make_message.hpp>

namespace sluice {

/// Error codes of the `sluice` error category. Every error crossing an actor
/// or I/O boundary is a caf::error of this category with a message that says
/// what failed and where (file, offset, key, peer).
enum class errc : uint8_t {
  malformed_message = 1, ///< a Cap'n Proto message failed to decode
  bad_config,            ///< an unknown key or a bad value
  source_failed,         ///< a source could not connect or read
  io_failed,             ///< a file could not be read or written
  task_failed,           ///< a task failed every attempt
  not_found,             ///< a block or peer is unknown
  graph_mismatch,        ///< a worker built a different graph than the driver
  refused,               ///< a request was refused (e.g. while stopping)
  bad_graph,             ///< the application built an invalid graph
  corrupt_data,          ///< a block or file failed validation
  state_lost,            ///< every copy of a state partition is gone
  node_failed,           ///< a node's actors kept crashing past their restart budget
};

const char* to_string(errc x);

inline caf::atom_value error_category() {
  return caf::atom("sluice");
}

/// Makes a sluice error carrying a human-readable explanation.
inline caf::error make_error(errc code, std::string what) {
  return caf::error{static_cast<uint8_t>(code), error_category(),
                    caf::make_message(std::move(what))};
}

/// Renders any caf::error for a log line or a user-facing message: for sluice
/// errors "<code>: <explanation>", else CAF's own rendering.
std::string describe(const caf::error& err);

/// The explanation a sluice error carries, without its code, for a message
/// that puts it in its own words (an exception's text, "<file>: <why>");
/// describe() for any other error.
std::string explanation(const caf::error& err);

/// Registers the renderer of the sluice error category with `cfg`.
void add_error_category(caf::actor_system_config& cfg);

} // namespace sluice
