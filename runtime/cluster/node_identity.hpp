#pragma once

#include <cstdint>
#include <mutex>
#include <string>

namespace sluice {

/// The id a worker registers under: its base id (unique per process, see
/// streaming_context) for its first incarnation, then `<base>-i2`,
/// `<base>-i3`, ... each time the driver declared it lost and it rejoins as
/// a new incarnation (nothing of an incarnation the driver gave up on is
/// trusted, so the new one must not share its id).
///
/// Lifetime: owned jointly (shared_ptr) by the streaming_context and each
/// worker_node it spawns for the process, so a worker node the context
/// restarts after a crash registers under the id the crashed one last had.
/// Concurrency: thread-safe (the worker node advances it on its scheduler
/// thread, the context reads it from another).
class node_identity {
public:
  explicit node_identity(std::string base);

  /// The id of the current incarnation.
  std::string current() const;

  /// 1 for the base id, then 2, 3, ...
  uint32_t incarnation() const;

  /// Moves to the next incarnation and returns its id.
  std::string next_incarnation();

  const std::string& base() const noexcept {
    return base_;
  }

private:
  const std::string base_;
  mutable std::mutex mtx_;
  uint32_t incarnation_ = 1;
};

} // namespace sluice
