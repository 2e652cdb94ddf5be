#include "runtime/config.hpp"

#include <algorithm>
#include <string_view>

#include <caf/config_option_adder.hpp>
#include <caf/io/middleman.hpp>
#include <caf/settings.hpp>

#include "messages/schemas.hpp"
#include "runtime/log.hpp"

namespace sluice {

namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

constexpr const char* storage_levels[] = {
  "memory",          "memory_ser",          "memory_2",
  "memory_ser_2",    "memory_and_disk",     "memory_and_disk_ser",
  "memory_and_disk_2", "memory_and_disk_ser_2",
};

caf::error bad(std::string what) {
  return make_error(errc::bad_config, std::move(what));
}

/// Checks every key below `category` of the parsed configuration against the
/// options. CAF 0.17 binds only keys directly inside an ini [section]: values
/// of nested sections ([sluice.wal]) reach `content` but not the option, so
/// they are stored here (content holds the final value: the command line's
/// over the file's).
caf::error bind_group(const caf::config_option_set& opts,
                      const std::string& category, const caf::settings& grp) {
  for (auto& [key, value] : grp) {
    auto name = category + "." + key;
    if (auto sub = caf::get_if<caf::settings>(&value)) {
      if (auto err = bind_group(opts, name, *sub))
        return err;
      continue;
    }
    auto opt = opts.qualified_name_lookup(category, key);
    if (opt == nullptr)
      return bad("unknown configuration key " + name);
    if (opt->check(value))
      return bad("bad value for " + name + ": " + caf::to_string(value));
    opt->store(value);
  }
  return caf::none;
}

} // namespace

caf::expected<endpoint> parse_endpoint(const std::string& key,
                                       const std::string& str) {
  auto colon = str.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == str.size())
    return bad("--" + key + " needs host:port, got '" + str + "'");
  endpoint result;
  result.host = str.substr(0, colon);
  auto port_str = str.substr(colon + 1);
  if (!std::all_of(port_str.begin(), port_str.end(), ::isdigit)
      || port_str.size() > 5)
    return bad("--" + key + ": port '" + port_str + "' is not a number");
  auto port = std::stoul(port_str);
  if (port > 65535)
    return bad("--" + key + ": port " + port_str + " is out of range");
  result.port = static_cast<uint16_t>(port);
  return result;
}

config::config() {
  load<caf::io::middleman>();
  sluice::add_error_category(*this);
  sluice::add_message_types(*this);
  caf::config_option_adder{custom_options_, "global"}
    .add(role_, "role", "cluster role: driver or worker")
    .add(local_, "local", "run the driver and N workers in this process")
    .add(listen_, "listen", "driver: host:port to accept workers on")
    .add(driver_, "driver", "worker: host:port of the driver")
    .add(duration_, "duration",
         "stop gracefully after this many seconds (0: until stopped)")
    .add(batch_interval_alias_, "batch-interval",
         "short form of --sluice.batch-interval")
    .add(checkpoint_alias_, "checkpoint",
         "short form of --sluice.checkpoint.dir")
    .add(wal_alias_, "wal", "short form of --sluice.wal.enable")
    .add(supervise_, "supervise",
         "driver: run it as a child process and restart it when it dies");
  caf::config_option_adder{custom_options_, "sluice"}
    .add(batch_interval_, "batch-interval", "time between batches")
    .add(block_interval_, "block-interval",
         "a receiver cuts a block this often (200ms)")
    .add(executor_cores_, "executor-cores", "tasks a worker runs at once (2)")
    .add(default_parallelism_, "default-parallelism",
         "partitions of keyed operators without an explicit count (4)")
    .add(concurrent_jobs_, "concurrent-jobs", "jobs run at once (1)")
    .add(stop_gracefully_on_shutdown_, "stop-gracefully-on-shutdown",
         "SIGTERM finishes received data before exiting")
    .add(graceful_stop_timeout_, "graceful-stop-timeout",
         "longest wait for pending batches in a graceful stop "
         "(default: 10 batch intervals)")
    .add(storage_level_, "storage-level",
         "receiver storage level (memory_ser_2)")
    .add(log_level_, "log-level", "debug, info, warning, error or quiet")
    .add(event_log_, "event-log",
         "driver: append its events (batches, nodes, receivers, recovery) to "
         "this file as JSON lines (default: off)");
  // Dotted keys live in nested categories: CAF 0.17 splits a command line
  // name at its last dot, so --sluice.wal.enable is "enable" in "sluice.wal".
  caf::config_option_adder{custom_options_, "sluice.receiver"}
    .add(receiver_max_rate_, "max-rate", "records/s per receiver, 0: unlimited")
    .add(receiver_restart_delay_, "restart-delay",
         "delay before a lost receiver is restarted; doubled with every "
         "further consecutive failure, up to 10s (200ms)")
    .add(receiver_max_restarts_, "max-restarts",
         "consecutive failures of a receiver before its stream is reported "
         "failed and given up (10)");
  caf::config_option_adder{custom_options_, "sluice.task"}
    .add(task_max_failures_, "max-failures",
         "attempts of a task before its job fails (4)");
  caf::config_option_adder{custom_options_, "sluice.checkpoint"}
    .add(checkpoint_dir_, "dir", "directory for checkpoints");
  caf::config_option_adder{custom_options_, "sluice.wal"}
    .add(wal_enable_, "enable", "write received blocks to a WAL")
    .add(wal_rolling_interval_, "rolling-interval",
         "a WAL segment covers this long (60s)");
  caf::config_option_adder{custom_options_, "sluice.block-manager"}
    .add(block_manager_memory_, "memory",
         "bytes of blocks a node keeps in memory before disk-level blocks "
         "spill (536870912 = 512 MiB)")
    .add(block_manager_local_dir_, "local-dir",
         "directory for spill files, an absolute path (default: the system "
         "temp directory)");
  caf::config_option_adder{custom_options_, "sluice.locality"}
    .add(locality_wait_, "wait",
         "how long a task waits for a free slot on a node holding its input "
         "before it runs anywhere (100ms; 0: never waits)");
  // A hung peer must turn into a down_msg within about a second; CAF's
  // heartbeats are off by default.
  set("middleman.heartbeat-interval", caf::timespan{milliseconds{100}});
  set("middleman.connection-timeout", caf::timespan{milliseconds{1000}});
  // Workers connect to each other directly (each listens, see worker mode in
  // streaming_context::start): block reads between workers then neither pass
  // through the driver nor break when it dies and restarts.
  set("middleman.enable-automatic-connections", true);
}

caf::config_option_adder config::app_options() {
  return caf::config_option_adder{custom_options_, "global"};
}

caf::error config::parse_args(int argc, char** argv) {
  std::vector<std::string> raw{argv + (argc > 0 ? 1 : 0), argv + argc};
  std::vector<std::string> args;
  std::vector<std::string> false_flags;
  // CAF's parser reports "not_an_option" without saying which; check each
  // argument ourselves so the message names it.
  for (auto& arg : raw) {
    if (arg.compare(0, 2, "--") != 0)
      return bad("unexpected argument '" + arg
                 + "' (options are written --key=value)");
    auto name = std::string_view{arg}.substr(2);
    auto eq = name.find('=');
    name = name.substr(0, eq);
    if (name == "config-file" || name == "help" || name == "long-help"
        || name == "dump-config") {
      args.push_back(arg);
      continue;
    }
    auto* opt = custom_options_.cli_long_name_lookup(name);
    if (opt == nullptr)
      return bad("unknown option --" + std::string{name});
    // CAF takes booleans only as bare flags; accept --flag=true|false too.
    if (opt->is_flag() && eq != std::string_view::npos) {
      auto value = arg.substr(arg.find('=') + 1);
      if (value == "true" || value == "1" || value == "yes") {
        args.push_back("--" + std::string{name});
      } else if (value == "false" || value == "0" || value == "no") {
        false_flags.emplace_back(name);
      } else {
        return bad("bad value in '" + arg + "' (expected true or false)");
      }
      continue;
    }
    args.push_back(arg);
  }
  caf::settings scratch;
  auto [code, pos] = custom_options_.parse(scratch, args);
  if (code != caf::pec::success)
    return bad("bad value in '" + (pos != args.end() ? *pos : std::string{})
               + "' (" + caf::to_string(code) + ")");
  if (auto err = parse(args))
    return bad("cannot parse the configuration: " + describe(err));
  // An ini file may carry keys no option knows: refuse them, not ignore them.
  if (auto grp = caf::get_if<caf::settings>(&content, "sluice"))
    if (auto err = bind_group(custom_options_, "sluice", *grp))
      return err;
  // After bind_group: content never saw these, and the command line wins.
  for (auto& name : false_flags)
    custom_options_.cli_long_name_lookup(name)->store(caf::config_value{false});
  return validate();
}

caf::error config::validate() {
  auto& s = sluice_settings;
  log::level lvl;
  if (!log::parse_level(log_level_, lvl))
    return bad("sluice.log-level must be debug, info, warning, error or "
               "quiet, not '"
               + log_level_ + "'");
  log::set_level(lvl);
  if (role_.empty()) {
    s.mode = run_mode::local;
    if (local_ == 0 || local_ < -1)
      return bad("--local needs at least 1 worker, got "
                 + std::to_string(local_));
    s.local_workers = local_ > 0 ? static_cast<uint32_t>(local_) : 2;
  } else if (local_ != -1) {
    return bad("--local and --role exclude each other");
  } else if (role_ == "driver") {
    s.mode = run_mode::driver;
  } else if (role_ == "worker") {
    s.mode = run_mode::worker;
    if (driver_.empty())
      return bad("--role=worker needs --driver=host:port");
  } else {
    return bad("--role must be driver or worker, not '" + role_ + "'");
  }
  if (auto ep = parse_endpoint("listen", listen_))
    s.listen = *ep;
  else
    return ep.error();
  if (!driver_.empty()) {
    if (auto ep = parse_endpoint("driver", driver_))
      s.driver = *ep;
    else
      return ep.error();
  }
  if (duration_ < 0)
    return bad("--duration must not be negative, got "
               + std::to_string(duration_));
  s.duration = std::chrono::seconds{duration_};
  auto bi = batch_interval_alias_.count() != 0 ? batch_interval_alias_
                                               : batch_interval_;
  s.batch_interval = duration_cast<milliseconds>(bi);
  if (s.batch_interval.count() <= 0)
    return bad("batch-interval must be at least 1ms");
  s.block_interval = duration_cast<milliseconds>(block_interval_);
  if (s.block_interval.count() <= 0)
    return bad("sluice.block-interval must be at least 1ms");
  if (s.block_interval > s.batch_interval)
    return bad("sluice.block-interval (" + std::to_string(s.block_interval.count())
               + "ms) must not exceed the batch interval ("
               + std::to_string(s.batch_interval.count()) + "ms)");
  auto positive = [](int64_t x, const char* key,
                     uint32_t& out) -> caf::error {
    if (x <= 0 || x > 1'000'000)
      return bad(std::string{key} + " must be between 1 and 1000000, got "
                 + std::to_string(x));
    out = static_cast<uint32_t>(x);
    return caf::none;
  };
  if (auto err = positive(task_max_failures_, "sluice.task.max-failures",
                          s.task_max_failures))
    return err;
  if (auto err = positive(executor_cores_, "sluice.executor-cores",
                          s.executor_cores))
    return err;
  if (auto err = positive(default_parallelism_, "sluice.default-parallelism",
                          s.default_parallelism))
    return err;
  if (auto err = positive(concurrent_jobs_, "sluice.concurrent-jobs",
                          s.concurrent_jobs))
    return err;
  if (receiver_max_rate_ < 0)
    return bad("sluice.receiver.max-rate must not be negative");
  s.receiver_max_rate = static_cast<uint64_t>(receiver_max_rate_);
  s.receiver_restart_delay = duration_cast<milliseconds>(receiver_restart_delay_);
  if (s.receiver_restart_delay.count() < 0)
    return bad("sluice.receiver.restart-delay must not be negative");
  if (receiver_max_restarts_ < 0 || receiver_max_restarts_ > 1'000'000)
    return bad("sluice.receiver.max-restarts must be between 0 and 1000000, got "
               + std::to_string(receiver_max_restarts_));
  s.receiver_max_restarts = static_cast<uint32_t>(receiver_max_restarts_);
  s.stop_gracefully_on_shutdown = stop_gracefully_on_shutdown_;
  if (graceful_stop_timeout_.count() < 0)
    return bad("sluice.graceful-stop-timeout must not be negative");
  s.graceful_stop_timeout = graceful_stop_timeout_.count() > 0
                              ? duration_cast<milliseconds>(graceful_stop_timeout_)
                              : s.batch_interval * 10;
  s.checkpoint_dir = !checkpoint_alias_.empty() ? checkpoint_alias_
                                                : checkpoint_dir_;
  s.wal_enable = wal_enable_ || wal_alias_;
  s.supervise = supervise_;
  if (s.supervise && s.mode == run_mode::worker)
    return bad("--supervise applies to the driver (and local mode); workers "
               "outlive their driver and reconnect by themselves");
  if (!s.checkpoint_dir.empty() && s.checkpoint_dir.front() != '/')
    return bad("the checkpoint directory must be an absolute path, got '"
               + s.checkpoint_dir + "'");
  if (s.wal_enable && s.checkpoint_dir.empty())
    return bad("sluice.wal.enable needs sluice.checkpoint.dir: the WAL lives "
               "in the checkpoint directory");
  s.wal_rolling_interval = duration_cast<milliseconds>(wal_rolling_interval_);
  if (s.wal_rolling_interval.count() <= 0)
    return bad("sluice.wal.rolling-interval must be positive");
  if (std::find(std::begin(storage_levels), std::end(storage_levels),
                storage_level_)
      == std::end(storage_levels))
    return bad("sluice.storage-level '" + storage_level_
               + "' is not one of memory, memory_ser, memory_2, memory_ser_2, "
                 "memory_and_disk[_ser][_2]");
  s.storage_level = storage_level_;
  auto ends_with_2 = storage_level_.size() > 2
                     && storage_level_.compare(storage_level_.size() - 2, 2, "_2") == 0;
  s.receiver_level = storage_level::of(storage_level_.find("disk") != std::string::npos,
                                       storage_level_.find("ser") != std::string::npos,
                                       ends_with_2 ? 2 : 1);
  if (block_manager_memory_ <= 0)
    return bad("sluice.block-manager.memory must be a positive number of "
               "bytes, got "
               + std::to_string(block_manager_memory_));
  s.block_manager_memory = static_cast<uint64_t>(block_manager_memory_);
  if (!block_manager_local_dir_.empty() && block_manager_local_dir_.front() != '/')
    return bad("sluice.block-manager.local-dir must be an absolute path, got '"
               + block_manager_local_dir_ + "'");
  s.block_manager_local_dir = block_manager_local_dir_;
  s.event_log = event_log_;
  if (locality_wait_.count() < 0)
    return bad("sluice.locality.wait must not be negative");
  s.locality_wait = duration_cast<milliseconds>(locality_wait_);
  return caf::none;
}

} // namespace sluice
