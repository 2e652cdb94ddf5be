#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/clock.hpp"

namespace sluice {

/// What happened to one batch, as the driver saw it.
struct batch_info {
  time_ms batch_time = 0;
  uint64_t records = 0;
  uint64_t bytes = 0;    ///< encoded bytes of the batch's input blocks
  time_ms submitted = 0; ///< jobs handed to the scheduler (clock time)
  time_ms started = 0;   ///< first job started
  time_ms finished = 0;  ///< last job ended
  uint32_t jobs = 0;
  uint32_t failed_jobs = 0;
  std::string error;     ///< first failure, empty if none

  time_ms scheduling_delay() const noexcept {
    return started - submitted;
  }
  time_ms processing_time() const noexcept {
    return finished - started;
  }
  time_ms total_delay() const noexcept {
    return finished - batch_time;
  }
};

/// A receiver's state change or error, as reported to the driver. `failed`
/// comes from the tracker: the stream's receiver failed more often in a
/// row than sluice.receiver.max-restarts allows, and the stream is given up.
///
/// From the tracker also: `placed` (its receiver runs on `node`, started
/// there or adopted after a driver restart) and `lost` (its worker was lost
/// or it ended abnormally; `message` says why and when it restarts).
struct receiver_info {
  uint32_t stream = 0;
  std::string node;
  enum class kind { started, error, stopped, failed, placed, lost } what = kind::started;
  std::string message;
};

/// A worker's membership change, as the driver's membership saw it.
/// `refreshed`: it restarted its BlockManager or TaskExecutor; `lost`: its
/// connection died or it hung (its id is never taken back); `left`: it
/// ended by itself or was told to leave.
struct node_info {
  std::string node;
  enum class kind { joined, refreshed, lost, left } what = kind::joined;
  uint32_t slots = 0;
  std::string reason;
};

/// A restarted driver's recovery: `started` once the plan is known (the
/// metadata checkpoint used, batches recomputed for state and pending ones
/// re-run), `finished` once the last of them completed.
struct recovery_info {
  enum class kind { started, finished } what = kind::started;
  std::string checkpoint;
  uint64_t recomputed = 0;
  uint64_t rerun = 0;
};

/// Observes a running context (the StreamingListener analogue).
/// Callbacks run on a driver actor's thread: keep them short; they must be
/// thread-safe against the code that registered them.
class listener {
public:
  virtual ~listener();
  virtual void on_batch_completed(const batch_info&);
  virtual void on_receiver_event(const receiver_info&);
  virtual void on_node_event(const node_info&);
  virtual void on_recovery(const recovery_info&);
};

/// The listeners of one context. Thread-safe: listeners may be added while
/// the context runs.
class listener_bus {
public:
  void add(std::shared_ptr<listener> x);
  void batch_completed(const batch_info& x) const;
  void receiver_event(const receiver_info& x) const;
  void node_event(const node_info& x) const;
  void recovery(const recovery_info& x) const;

private:
  std::vector<std::shared_ptr<listener>> snapshot() const;

  mutable std::mutex mtx_;
  std::vector<std::shared_ptr<listener>> listeners_;
};

} // namespace sluice
