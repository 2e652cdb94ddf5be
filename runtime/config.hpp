#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <caf/actor_system_config.hpp>
#include <caf/timespan.hpp>

#include "runtime/error.hpp"
#include "runtime/storage_level.hpp"

namespace sluice {

/// How a process takes part in a sluice application.
enum class run_mode {
  local,  ///< driver and N workers in this process
  driver, ///< the cluster's driver (--role=driver)
  worker, ///< a cluster worker (--role=worker --driver=host:port)
};

/// A host and a port, parsed from "host:port".
struct endpoint {
  std::string host;
  uint16_t port = 0;
};

/// Parses "host:port" (port 0..65535); a clear error names `key` otherwise.
caf::expected<endpoint> parse_endpoint(const std::string& key,
                                       const std::string& str);

/// The settings a streaming context runs with, after validation.
struct run_settings {
  run_mode mode = run_mode::local;
  uint32_t local_workers = 2;
  endpoint listen{"127.0.0.1", 0};
  endpoint driver;
  std::chrono::milliseconds batch_interval{1000};
  std::chrono::milliseconds block_interval{200};
  std::chrono::seconds duration{0}; ///< 0: until stopped
  uint64_t receiver_max_rate = 0;
  uint32_t task_max_failures = 4;
  uint32_t executor_cores = 2;
  uint32_t default_parallelism = 4;
  uint32_t concurrent_jobs = 1;
  std::chrono::milliseconds receiver_restart_delay{200};
  /// Consecutive failures of a stream's receiver tolerated before the
  /// stream is reported failed and no longer restarted.
  uint32_t receiver_max_restarts = 10;
  bool stop_gracefully_on_shutdown = false;
  /// A graceful stop gives up waiting for pending batches after this long
  /// (default: 10 batch intervals, as Spark's gracefulStopTimeout).
  std::chrono::milliseconds graceful_stop_timeout{10000};
  std::string checkpoint_dir;
  bool wal_enable = false;
  std::chrono::milliseconds wal_rolling_interval{60000};
  std::string storage_level = "memory_ser_2";
  /// `storage_level` parsed: how receivers keep their blocks (disk flag,
  /// copies).
  sluice::storage_level receiver_level = sluice::storage_level::memory_only_ser_2();
  /// Memory a node's BlockManager may use before blocks persisted at a disk
  /// level spill (bytes).
  uint64_t block_manager_memory = uint64_t{512} << 20;
  /// Where each BlockManager creates its spill directory (removed at a
  /// clean shutdown); empty: the system temp directory.
  std::string block_manager_local_dir;
  /// Delay scheduling: how long a task whose preferred nodes (those holding
  /// its input) are all busy waits for one of them before it takes any free
  /// slot (runtime/exec/placement.hpp).
  std::chrono::milliseconds locality_wait{100};
  bool supervise = false; ///< run() restarts the driver process when it dies
  /// The driver's listener events as JSON lines (runtime/event_log.hpp),
  /// appended to this file; empty: off.
  std::string event_log;
};

/// sluice's actor_system_config: every key of the README's configuration
/// table (docs/contracts.md, "Configuration") under the `sluice.` prefix
/// (command line `--sluice.key=value` or `[sluice]` in an ini file), the
/// mode options every sluice program takes (`--local=N`, `--role`,
/// `--listen`, `--driver`, `--duration`, `--batch-interval`), and the
/// message types and error category of sluice registered.
///
/// Applications add their own options through `app_options()` before
/// parsing. Lifetime: outlives the actor_system built from it.
class config : public caf::actor_system_config {
public:
  config();

  /// Option group for application options (no prefix: `--source=...`).
  caf::config_option_adder app_options();

  /// Parses the command line (and `--config-file`, if given), then validates.
  /// Unknown options, unknown ini keys and bad values yield an error that
  /// names them.
  caf::error parse_args(int argc, char** argv);

  /// Validated settings; valid after parse_args() (or set directly by
  /// embedding programs and tests through `sluice_settings`).
  run_settings sluice_settings;

  /// Checks the raw option values and fills sluice_settings.
  caf::error validate();

private:
  // Raw option storage bound to CAF's option parser.
  std::string role_;
  int64_t local_ = -1;
  std::string listen_ = "127.0.0.1:0";
  std::string driver_;
  int64_t duration_ = 0;
  caf::timespan batch_interval_alias_{0};
  std::string checkpoint_alias_;
  caf::timespan batch_interval_{std::chrono::seconds{1}};
  caf::timespan block_interval_{std::chrono::milliseconds{200}};
  int64_t receiver_max_rate_ = 0;
  int64_t task_max_failures_ = 4;
  int64_t executor_cores_ = 2;
  int64_t default_parallelism_ = 4;
  int64_t concurrent_jobs_ = 1;
  caf::timespan receiver_restart_delay_{std::chrono::milliseconds{200}};
  int64_t receiver_max_restarts_ = 10;
  bool stop_gracefully_on_shutdown_ = false;
  caf::timespan graceful_stop_timeout_{0};
  std::string checkpoint_dir_;
  bool wal_enable_ = false;
  bool wal_alias_ = false;
  bool supervise_ = false;
  caf::timespan wal_rolling_interval_{std::chrono::seconds{60}};
  std::string storage_level_ = "memory_ser_2";
  int64_t block_manager_memory_ = int64_t{512} << 20;
  std::string block_manager_local_dir_;
  std::string event_log_;
  caf::timespan locality_wait_{std::chrono::milliseconds{100}};
  std::string log_level_ = "info";
};

} // namespace sluice
