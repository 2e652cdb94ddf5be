#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <signal.h>

#include "tests/process/cluster.hpp"

using namespace sluice::test;
namespace fs = std::filesystem;

namespace {

/// Stops the driver with SIGTERM (graceful) and checks that every process
/// of the cluster exits 0: workers leave when the driver says so.
void stop_cluster(wordcount_cluster& c) {
  c.driver->signal(SIGTERM);
  INFO(c.logs());
  CHECK(exited_with(c.driver->wait(), 0));
  for (auto& w : c.workers)
    CHECK(exited_with(w->wait(), 0));
}

/// Every batch directory holds only complete part files.
void check_no_partial_outputs(const std::string& out) {
  for (auto& batch : fs::directory_iterator(out))
    for (auto& f : fs::directory_iterator(batch.path())) {
      INFO(f.path().string());
      CHECK(f.path().filename().string().rfind("part-", 0) == 0);
    }
}

} // namespace

TEST_CASE("a driver and two worker processes count a socket stream exactly",
          "[process][cluster]") {
  auto text = make_text(20000, 7);
  text_server server{text};
  wordcount_cluster c;
  c.app_args = {"--source=socket://127.0.0.1:" + std::to_string(server.port()),
                "--batch-interval=300ms",
                "--sluice.stop-gracefully-on-shutdown=true"};
  c.start_driver();
  c.start_worker();
  c.start_worker();
  REQUIRE(c.await_workers(2));
  auto expected = count_words(text);
  INFO(c.logs());
  REQUIRE(wait_until([&] { return server.sent(); }, std::chrono::seconds{60}));
  CHECK(wait_until([&] { return read_word_totals(c.output()) == expected; },
                   std::chrono::seconds{60}));
  stop_cluster(c);
  // Still exact after the graceful stop: nothing was counted twice.
  CHECK(read_word_totals(c.output()) == expected);
  check_no_partial_outputs(c.output());
}

TEST_CASE("a cluster counts files moved into a directory while it runs exactly",
          "[process][cluster]") {
  wordcount_cluster c;
  auto in = c.dir / "in";
  auto staging = c.dir / "staging";
  fs::create_directories(in);
  fs::create_directories(staging);
  c.app_args = {"dir://" + in, "--batch-interval=200ms",
                "--sluice.stop-gracefully-on-shutdown=true"};
  c.app_args[0] = "--source=" + c.app_args[0];
  c.start_driver();
  c.start_worker();
  c.start_worker();
  REQUIRE(c.await_workers(2));
  std::map<std::string, int64_t> expected;
  for (int i = 0; i < 12; ++i) {
    auto text = make_text(300 + i * 50, 100 + i);
    for (auto& [w, n] : count_words(text))
      expected[w] += n;
    auto name = "file-" + std::to_string(i) + ".txt";
    write_file(staging + "/" + name, text);
    // A rename is how files arrive atomically in a watched directory.
    fs::rename(staging + "/" + name, in + "/" + name);
    // Spread arrivals over several batches: wait until this file counted.
    auto want = expected;
    INFO(c.logs());
    REQUIRE(wait_until([&] { return read_word_totals(c.output()) == want; },
                       std::chrono::seconds{60}));
  }
  // A file still being written (dot name) is ignored.
  write_file(in + "/.partial", "ignored words here\n");
  stop_cluster(c);
  CHECK(read_word_totals(c.output()) == expected);
  check_no_partial_outputs(c.output());
}

TEST_CASE("a worker started before its driver finds it and gets work",
          "[process][cluster]") {
  wordcount_cluster c;
  auto in = c.dir / "in";
  fs::create_directories(in);
  c.app_args = {"--source=dir://" + in, "--batch-interval=200ms"};
  auto port = refused_port();
  auto& w = c.start_worker(port);
  REQUIRE(wait_until([&] { return w.err().find("unreachable") != std::string::npos; }));
  c.start_driver(port);
  INFO(c.logs());
  REQUIRE(wait_until([&] {
    return w.err().find("registered with the driver") != std::string::npos;
  }));
  auto text = make_text(500, 3);
  write_file(c.dir / "f.tmp", text);
  fs::rename(c.dir / "f.tmp", in + "/f.txt");
  CHECK(wait_until([&] { return read_word_totals(c.output()) == count_words(text); }));
  stop_cluster(c);
}

TEST_CASE("a worker that built a different graph is refused with a clear error",
          "[process][cluster]") {
  wordcount_cluster c;
  auto in = c.dir / "in";
  fs::create_directories(in);
  c.app_args = {"--source=dir://" + in};
  c.start_driver();
  // Same binary, other source kind: a different DStream graph.
  c.app_args = {"--source=gen://10"};
  auto& w = c.start_worker();
  INFO(c.logs());
  CHECK(exited_with(w.wait(), 1));
  CHECK_THAT(w.err(), Catch::Contains("different DStream graph"));
  CHECK_THAT(c.driver->err(), Catch::Contains("different DStream graph"));
  c.workers.clear();
  stop_cluster(c);
}
