#pragma once

#include <memory>
#include <string>

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "runtime/clock.hpp"
#include "runtime/wal/wal.hpp"

namespace sluice {

/// State of a WAL appender: owns one wal::writer and appends on its own
/// thread (spawn it detached), so a Receiver's fsync never blocks the
/// scheduler threads that run every other actor.
///
/// Protocol: (wal_append_atom, buffer, time_ms now) answers
/// (segment, offset, length) once the record is durable, or the error (e.g.
/// ENOSPC). Lifetime: spawned and owned by one Receiver, which ends it.
struct wal_appender_state {
  static const char* name;
  std::unique_ptr<wal::writer> writer;
  std::string dir;
};

caf::behavior wal_appender(caf::stateful_actor<wal_appender_state>* self,
                           std::string dir, std::chrono::milliseconds rolling);

} // namespace sluice
