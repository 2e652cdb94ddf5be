#include <catch2/catch.hpp>

#include <chrono>
#include <initializer_list>
#include <string>
#include <vector>

#include "runtime/config.hpp"
#include "runtime/error.hpp"
#include "runtime/log.hpp"
#include "tests/support/helpers.hpp"

using namespace sluice;
using namespace std::chrono_literals;

namespace {

/// Parses `args` (without the program name) into `cfg`.
caf::error parse(config& cfg, std::initializer_list<std::string> args) {
  std::vector<std::string> storage{"sluice-test"};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& arg : storage)
    argv.push_back(arg.data());
  argv.push_back(nullptr);
  auto err = cfg.parse_args(static_cast<int>(storage.size()), argv.data());
  // parse_args applies sluice.log-level process-wide; leave the default.
  log::set_level(log::level::info);
  return err;
}

bool is_bad_config(const caf::error& err) {
  return err && err.category() == error_category()
         && err.code() == static_cast<uint8_t>(errc::bad_config);
}

/// Expects a refusal with code bad_config whose text names `key` and, if
/// given, says `reason` (so that a refusal for another cause, such as an
/// option nobody registered, does not pass for the one under test).
void check_refused(std::initializer_list<std::string> args, const std::string& key,
                   const std::string& reason = "") {
  config cfg;
  auto err = parse(cfg, args);
  INFO("refusal: " << describe(err));
  CHECK(is_bad_config(err));
  CHECK_THAT(describe(err), Catch::Contains(key));
  if (!reason.empty())
    CHECK_THAT(describe(err), Catch::Contains(reason));
}

} // namespace

TEST_CASE("without options a program runs locally with two workers", "[config]") {
  config cfg;
  auto err = parse(cfg, {});
  INFO(describe(err));
  REQUIRE(!err);
  auto& s = cfg.sluice_settings;
  CHECK(s.mode == run_mode::local);
  CHECK(s.local_workers == 2);
  CHECK(s.listen.host == "127.0.0.1");
  CHECK(s.listen.port == 0);
  CHECK(s.batch_interval == 1000ms);
  CHECK(s.block_interval == 200ms);
  CHECK(s.duration == 0s);
  CHECK(s.receiver_max_rate == 0);
  CHECK(s.task_max_failures == 4);
  CHECK(s.executor_cores == 2);
  CHECK(s.default_parallelism == 4);
  CHECK(s.concurrent_jobs == 1);
  CHECK(s.receiver_restart_delay == 200ms);
  CHECK_FALSE(s.wal_enable);
  CHECK(s.checkpoint_dir.empty());
  CHECK(s.storage_level == "memory_ser_2");
  CHECK(s.receiver_level.name == std::string{"MEMORY_ONLY_SER_2"});
  CHECK(s.block_manager_memory == 512ull * 1024 * 1024);
  CHECK(s.block_manager_local_dir.empty());
}

TEST_CASE("local mode takes the number of workers", "[config]") {
  config cfg;
  REQUIRE(!parse(cfg, {"--local=3"}));
  CHECK(cfg.sluice_settings.mode == run_mode::local);
  CHECK(cfg.sluice_settings.local_workers == 3);
}

TEST_CASE("the driver role listens where it is told", "[config]") {
  SECTION("an OS-chosen port") {
    config cfg;
    auto err = parse(cfg, {"--role=driver", "--listen=127.0.0.1:0"});
    INFO(describe(err));
    REQUIRE(!err);
    CHECK(cfg.sluice_settings.mode == run_mode::driver);
    CHECK(cfg.sluice_settings.listen.host == "127.0.0.1");
    CHECK(cfg.sluice_settings.listen.port == 0);
  }
  SECTION("a fixed port on every interface") {
    config cfg;
    REQUIRE(!parse(cfg, {"--role=driver", "--listen=0.0.0.0:65535"}));
    CHECK(cfg.sluice_settings.listen.host == "0.0.0.0");
    CHECK(cfg.sluice_settings.listen.port == 65535);
  }
}

TEST_CASE("the worker role finds its driver", "[config]") {
  config cfg;
  auto err = parse(cfg, {"--role=worker", "--driver=h:1"});
  INFO(describe(err));
  REQUIRE(!err);
  CHECK(cfg.sluice_settings.mode == run_mode::worker);
  CHECK(cfg.sluice_settings.driver.host == "h");
  CHECK(cfg.sluice_settings.driver.port == 1);
}

TEST_CASE("the batch interval is set by its short and its full name", "[config]") {
  SECTION("short form") {
    config cfg;
    REQUIRE(!parse(cfg, {"--batch-interval=500ms"}));
    CHECK(cfg.sluice_settings.batch_interval == 500ms);
  }
  SECTION("full name") {
    config cfg;
    REQUIRE(!parse(cfg, {"--sluice.batch-interval=250ms"}));
    CHECK(cfg.sluice_settings.batch_interval == 250ms);
  }
  SECTION("seconds") {
    config cfg;
    REQUIRE(!parse(cfg, {"--sluice.batch-interval=3s", "--sluice.block-interval=3s"}));
    CHECK(cfg.sluice_settings.batch_interval == 3000ms);
    CHECK(cfg.sluice_settings.block_interval == 3000ms);
  }
}

TEST_CASE("sluice keys on the command line reach the settings", "[config]") {
  config cfg;
  auto err = parse(cfg, {"--duration=30", "--sluice.receiver.max-rate=1000",
                         "--sluice.task.max-failures=2",
                         "--sluice.executor-cores=8",
                         "--sluice.default-parallelism=16",
                         "--sluice.concurrent-jobs=3",
                         "--sluice.receiver.restart-delay=50ms",
                         "--sluice.checkpoint.dir=/tmp/ckpt",
                         "--sluice.wal.enable=true",
                         "--sluice.storage-level=memory_and_disk_2"});
  INFO(describe(err));
  REQUIRE(!err);
  auto& s = cfg.sluice_settings;
  CHECK(s.duration == 30s);
  CHECK(s.receiver_max_rate == 1000);
  CHECK(s.task_max_failures == 2);
  CHECK(s.executor_cores == 8);
  CHECK(s.default_parallelism == 16);
  CHECK(s.concurrent_jobs == 3);
  CHECK(s.receiver_restart_delay == 50ms);
  CHECK(s.checkpoint_dir == "/tmp/ckpt");
  CHECK(s.wal_enable);
  CHECK(s.storage_level == "memory_and_disk_2");
  CHECK(s.receiver_level.name == std::string{"MEMORY_AND_DISK_2"});
}

TEST_CASE("the log level option sets the process threshold", "[config]") {
  config cfg;
  std::vector<std::string> storage{"sluice-test", "--sluice.log-level=error"};
  std::vector<char*> argv{storage[0].data(), storage[1].data(), nullptr};
  auto err = cfg.parse_args(2, argv.data());
  auto lvl = log::current_level();
  log::set_level(log::level::info);
  REQUIRE(!err);
  CHECK(lvl == log::level::error);
}

TEST_CASE("an unknown option is refused by name", "[config]") {
  check_refused({"--bogus=1"}, "--bogus", "unknown option");
  check_refused({"--bogus"}, "--bogus", "unknown option");
  check_refused({"plain-argument"}, "plain-argument", "unexpected argument");
}

TEST_CASE("an unknown sluice key is refused by name", "[config]") {
  check_refused({"--sluice.no-such-key=1"}, "sluice.no-such-key", "unknown option");
  check_refused({"--sluice.wal.no-such-key=1"}, "sluice.wal.no-such-key",
                "unknown option");
}

TEST_CASE("a value that does not parse is refused naming the option", "[config]") {
  check_refused({"--local=abc"}, "--local=abc", "bad value");
  check_refused({"--sluice.batch-interval=soon"}, "sluice.batch-interval");
  check_refused({"--sluice.executor-cores=many"}, "sluice.executor-cores");
}

TEST_CASE("local mode and a role exclude each other", "[config]") {
  check_refused({"--local=2", "--role=driver"}, "--local and --role",
                "exclude each other");
}

TEST_CASE("local mode needs at least one worker", "[config]") {
  check_refused({"--local=0"}, "--local", "at least 1 worker");
  check_refused({"--local=-3"}, "--local", "at least 1 worker");
}

TEST_CASE("an unknown role is refused", "[config]") {
  check_refused({"--role=foo"}, "--role", "must be driver or worker, not 'foo'");
}

TEST_CASE("a worker without a driver address is refused", "[config]") {
  check_refused({"--role=worker"}, "--driver", "--role=worker needs --driver");
}

TEST_CASE("bad endpoints are refused naming the option", "[config]") {
  check_refused({"--role=driver", "--listen=localhost"}, "--listen", "needs host:port");
  check_refused({"--role=driver", "--listen=:80"}, "--listen", "needs host:port");
  check_refused({"--role=driver", "--listen=host:"}, "--listen", "needs host:port");
  check_refused({"--role=driver", "--listen=127.0.0.1:70000"}, "--listen",
                "out of range");
  check_refused({"--role=driver", "--listen=127.0.0.1:999999"}, "--listen",
                "not a number");
  check_refused({"--role=worker", "--driver=h:abc"}, "--driver", "not a number");
  check_refused({"--role=worker", "--driver=h:-1"}, "--driver", "not a number");
  check_refused({"--role=worker", "--driver=h"}, "--driver", "needs host:port");
}

TEST_CASE("parse_endpoint splits at the last colon", "[config]") {
  auto ep = parse_endpoint("listen", "::1:8080");
  REQUIRE(ep);
  CHECK(ep->host == "::1");
  CHECK(ep->port == 8080);
  auto bad = parse_endpoint("driver", "h:65536");
  REQUIRE_FALSE(bad);
  CHECK_THAT(describe(bad.error()), Catch::Contains("--driver"));
}

TEST_CASE("a block interval longer than the batch interval is refused",
          "[config]") {
  check_refused({"--sluice.block-interval=2s"}, "sluice.block-interval",
                "must not exceed the batch interval");
  check_refused({"--batch-interval=100ms", "--sluice.block-interval=101ms"},
                "sluice.block-interval", "must not exceed the batch interval");
}

TEST_CASE("negative durations are refused", "[config]") {
  check_refused({"--duration=-5"}, "--duration", "must not be negative");
  check_refused({"--sluice.batch-interval=-1s"}, "batch-interval", "at least 1ms");
  check_refused({"--sluice.block-interval=-10ms"}, "sluice.block-interval",
                "at least 1ms");
  check_refused({"--sluice.wal.rolling-interval=-1s"}, "sluice.wal.rolling-interval",
                "must be positive");
  check_refused({"--sluice.graceful-stop-timeout=-1s"},
                "sluice.graceful-stop-timeout", "must not be negative");
}

TEST_CASE("counts that must be positive are refused at zero", "[config]") {
  std::string range = "must be between 1 and 1000000";
  check_refused({"--sluice.task.max-failures=0"}, "sluice.task.max-failures", range);
  check_refused({"--sluice.executor-cores=0"}, "sluice.executor-cores", range);
  check_refused({"--sluice.default-parallelism=-1"}, "sluice.default-parallelism",
                range);
  check_refused({"--sluice.concurrent-jobs=0"}, "sluice.concurrent-jobs", range);
  check_refused({"--sluice.receiver.max-rate=-1"}, "sluice.receiver.max-rate",
                "must not be negative");
}

TEST_CASE("an unknown storage level is refused", "[config]") {
  check_refused({"--sluice.storage-level=nonsense"}, "sluice.storage-level",
                "'nonsense' is not one of");
}

TEST_CASE("an unknown log level is refused", "[config]") {
  check_refused({"--sluice.log-level=nonsense"}, "sluice.log-level",
                "not 'nonsense'");
  CHECK(log::current_level() == log::level::info);
}

TEST_CASE("a write ahead log without a checkpoint directory is refused",
          "[config]") {
  check_refused({"--sluice.wal.enable=true"}, "sluice.wal.enable",
                "needs sluice.checkpoint.dir");
  check_refused({"--sluice.wal.enable"}, "sluice.wal.enable",
                "needs sluice.checkpoint.dir");
}

TEST_CASE("an ini file sets sluice keys", "[config]") {
  test::temp_dir dir{"sluice-config"};
  auto path = dir / "app.ini";
  test::write_file(path, "[sluice]\nbatch-interval=2s\nexecutor-cores=5\n");
  config cfg;
  auto err = parse(cfg, {"--config-file=" + path});
  INFO(describe(err));
  REQUIRE(!err);
  CHECK(cfg.sluice_settings.batch_interval == 2000ms);
  CHECK(cfg.sluice_settings.executor_cores == 5);
}

TEST_CASE("an ini file with an unknown sluice key is refused naming it",
          "[config]") {
  test::temp_dir dir{"sluice-config"};
  auto path = dir / "app.ini";
  test::write_file(path, "[sluice]\nbatch-interval=2s\nbatch-intervall=3s\n");
  check_refused({"--config-file=" + path}, "sluice.batch-intervall",
                "unknown configuration key");
}

TEST_CASE("an ini file sets dotted sluice keys in nested sections", "[config]") {
  test::temp_dir dir{"sluice-config"};
  auto path = dir / "app.ini";
  test::write_file(path, "[sluice]\nexecutor-cores=3\n"
                         "[sluice.task]\nmax-failures=7\n"
                         "[sluice.receiver]\nmax-rate=500\nrestart-delay=75ms\n"
                         "[sluice.checkpoint]\ndir=\"/tmp/ckpt\"\n"
                         "[sluice.wal]\nenable=true\nrolling-interval=5s\n");
  config cfg;
  auto err = parse(cfg, {"--config-file=" + path});
  INFO(describe(err));
  REQUIRE(!err);
  auto& s = cfg.sluice_settings;
  CHECK(s.executor_cores == 3);
  CHECK(s.task_max_failures == 7);
  CHECK(s.receiver_max_rate == 500);
  CHECK(s.receiver_restart_delay == 75ms);
  CHECK(s.checkpoint_dir == "/tmp/ckpt");
  CHECK(s.wal_enable);
  CHECK(s.wal_rolling_interval == 5000ms);
}

TEST_CASE("the command line overrides the ini file", "[config]") {
  test::temp_dir dir{"sluice-config"};
  auto path = dir / "app.ini";
  test::write_file(path, "[sluice]\nexecutor-cores=3\n"
                         "[sluice.task]\nmax-failures=7\n"
                         "[sluice.checkpoint]\ndir=\"/tmp/ckpt\"\n"
                         "[sluice.wal]\nenable=true\n");
  config cfg;
  auto err = parse(cfg, {"--config-file=" + path, "--sluice.executor-cores=5",
                         "--sluice.task.max-failures=9",
                         "--sluice.wal.enable=false"});
  INFO(describe(err));
  REQUIRE(!err);
  CHECK(cfg.sluice_settings.executor_cores == 5);
  CHECK(cfg.sluice_settings.task_max_failures == 9);
  CHECK_FALSE(cfg.sluice_settings.wal_enable);
  CHECK(cfg.sluice_settings.checkpoint_dir == "/tmp/ckpt");
}

TEST_CASE("an ini file with an unknown or badly typed nested key is refused "
          "naming it",
          "[config]") {
  test::temp_dir dir{"sluice-config"};
  auto unknown = dir / "unknown.ini";
  test::write_file(unknown, "[sluice.wal]\nenable=false\nsegments=3\n");
  check_refused({"--config-file=" + unknown}, "sluice.wal.segments",
                "unknown configuration key");
  auto typed = dir / "typed.ini";
  test::write_file(typed, "[sluice.task]\nmax-failures=\"many\"\n");
  check_refused({"--config-file=" + typed}, "sluice.task.max-failures",
                "bad value");
}

TEST_CASE("boolean flags take an explicit value", "[config]") {
  SECTION("true") {
    config cfg;
    REQUIRE(!parse(cfg, {"--sluice.stop-gracefully-on-shutdown=true"}));
    CHECK(cfg.sluice_settings.stop_gracefully_on_shutdown);
  }
  SECTION("bare") {
    config cfg;
    REQUIRE(!parse(cfg, {"--sluice.stop-gracefully-on-shutdown"}));
    CHECK(cfg.sluice_settings.stop_gracefully_on_shutdown);
  }
  SECTION("false") {
    config cfg;
    REQUIRE(!parse(cfg, {"--sluice.stop-gracefully-on-shutdown=false"}));
    CHECK_FALSE(cfg.sluice_settings.stop_gracefully_on_shutdown);
  }
  SECTION("nonsense") {
    check_refused({"--sluice.stop-gracefully-on-shutdown=maybe"},
                  "--sluice.stop-gracefully-on-shutdown=maybe", "expected true or false");
  }
}

TEST_CASE("the block manager memory budget and spill directory are set by their keys",
          "[config]") {
  SECTION("command line") {
    config cfg;
    auto err = parse(cfg, {"--sluice.block-manager.memory=1048576",
                           "--sluice.block-manager.local-dir=/var/tmp/spill"});
    INFO(describe(err));
    REQUIRE(!err);
    CHECK(cfg.sluice_settings.block_manager_memory == 1048576);
    CHECK(cfg.sluice_settings.block_manager_local_dir == "/var/tmp/spill");
  }
  SECTION("ini file") {
    test::temp_dir dir{"sluice-config"};
    auto path = dir / "app.ini";
    test::write_file(path, "[sluice.block-manager]\nmemory=4096\n"
                           "local-dir=\"/var/tmp/spill\"\n");
    config cfg;
    auto err = parse(cfg, {"--config-file=" + path});
    INFO(describe(err));
    REQUIRE(!err);
    CHECK(cfg.sluice_settings.block_manager_memory == 4096);
    CHECK(cfg.sluice_settings.block_manager_local_dir == "/var/tmp/spill");
  }
}

TEST_CASE("a block manager budget that is not positive or a relative spill directory is refused",
          "[config]") {
  check_refused({"--sluice.block-manager.memory=0"}, "sluice.block-manager.memory",
                "positive number of bytes");
  check_refused({"--sluice.block-manager.memory=-5"}, "sluice.block-manager.memory",
                "positive number of bytes");
  check_refused({"--sluice.block-manager.memory=lots"}, "sluice.block-manager.memory");
  check_refused({"--sluice.block-manager.local-dir=spill"},
                "sluice.block-manager.local-dir", "absolute path");
}

TEST_CASE("the locality wait defaults to 100ms and takes any duration from zero",
          "[config]") {
  {
    config cfg;
    REQUIRE(!parse(cfg, {}));
    CHECK(cfg.sluice_settings.locality_wait == 100ms);
  }
  {
    config cfg;
    auto err = parse(cfg, {"--sluice.locality.wait=3s"});
    INFO(describe(err));
    REQUIRE(!err);
    CHECK(cfg.sluice_settings.locality_wait == 3000ms);
  }
  {
    config cfg;
    REQUIRE(!parse(cfg, {"--sluice.locality.wait=0s"}));
    CHECK(cfg.sluice_settings.locality_wait == 0ms);
  }
  check_refused({"--sluice.locality.wait=-1ms"}, "sluice.locality.wait",
                "must not be negative");
}

TEST_CASE("a hung peer is declared lost within 2 s by default and the timeout "
          "is settable",
          "[config]") {
  auto timeout = [](const config& cfg) {
    return caf::get_or(cfg.content, "middleman.connection-timeout",
                       caf::timespan{0});
  };
  {
    config cfg;
    REQUIRE(!parse(cfg, {}));
    CHECK(timeout(cfg) > caf::timespan{0});
    CHECK(timeout(cfg) <= caf::timespan{2s});
    CHECK(caf::get_or(cfg.content, "middleman.heartbeat-interval",
                      caf::timespan{0})
          == caf::timespan{100ms});
  }
  {
    config cfg;
    auto err = parse(cfg, {"--middleman.connection-timeout=1500ms"});
    INFO(describe(err));
    REQUIRE(!err);
    CHECK(timeout(cfg) == caf::timespan{1500ms});
  }
}
