#pragma once

#include <cstdio>
#include <memory>
#include <mutex>
#include <string>

#include <caf/expected.hpp>

#include "runtime/listener.hpp"

namespace sluice {

/// The driver's listener events as JSON lines, one object per event with
/// `"event"` (batch_completed, receiver, node, recovery), `"at"` (ms since
/// the epoch, system clock) and the event's fields; see
/// docs/event_log.md. Enabled by `sluice.event-log=PATH`. Harnesses,
/// tests and benchmarks read facts here instead of parsing log prose.
///
/// The file is opened for appending, so a supervised driver's incarnations
/// write one history; every line is flushed when written, so a reader sees
/// whole lines up to the last event (a line cut by a crash is the last
/// one and has no newline: readers skip it).
///
/// Lifetime: owned by the context's listener bus (shared). Concurrency:
/// callbacks come from several driver actors; a mutex orders the lines.
class event_log : public listener {
public:
  /// Opens (creating) `path` for appending; an error names the path.
  static caf::expected<std::shared_ptr<event_log>> open(const std::string& path);

  ~event_log() override;

  void on_batch_completed(const batch_info& x) override;
  void on_receiver_event(const receiver_info& x) override;
  void on_node_event(const node_info& x) override;
  void on_recovery(const recovery_info& x) override;

private:
  explicit event_log(std::FILE* f) : file_(f) {
  }

  void write(const std::string& line);

  std::mutex mtx_;
  std::FILE* file_;
};

} // namespace sluice
