#include <catch2/catch.hpp>

#include <filesystem>
#include <regex>
#include <signal.h>

#include "tests/process/cluster.hpp"

using namespace sluice::test;
namespace fs = std::filesystem;

namespace {

} // namespace

TEST_CASE("stateful wordcount writes the running totals since the start in every batch",
          "[process][apps]") {
  temp_dir dir{"sluice-stateful"};
  auto in = dir / "in";
  fs::create_directories(in);
  child_process p{{wordcount_binary(), "--local=2", "--source=dir://" + in,
                   "--output=" + (dir / "out"), "--batch-interval=200ms",
                   "--stateful", "--checkpoint=" + (dir / "ckpt")},
                  dir.path(), "wordcount"};
  std::map<std::string, int64_t> expected;
  INFO(p.err());
  for (int i = 0; i < 4; ++i) {
    auto text = make_text(200, 50 + i);
    for (auto& [w, n] : count_words(text))
      expected[w] += n;
    move_in(dir, in, "f" + std::to_string(i), text);
    auto want = expected;
    // Each batch holds the totals of everything so far, not of the batch.
    REQUIRE(wait_until([&] {
      auto newest = newest_batch(dir / "out");
      return !newest.empty() && read_word_totals(newest) == want;
    }));
  }
  p.signal(SIGTERM);
  CHECK(exited_with(p.wait(), 0));
}

TEST_CASE("stateful wordcount without a checkpoint directory is refused at start",
          "[process][apps]") {
  temp_dir dir{"sluice-stateful"};
  child_process p{{wordcount_binary(), "--local=1", "--source=gen://10",
                   "--output=" + (dir / "out"), "--stateful"},
                  dir.path(), "wordcount"};
  CHECK(exited_with(p.wait(), 2));
  CHECK_THAT(p.err(), Catch::Contains("checkpoint"));
}

TEST_CASE("topk lists the most frequent words of the last 30 seconds every 5 seconds",
          "[process][apps]") {
  temp_dir dir{"sluice-topk"};
  auto in = dir / "in";
  fs::create_directories(in);
  std::string text;
  for (int i = 0; i < 9; ++i)
    text += "apple ";
  for (int i = 0; i < 7; ++i)
    text += "pear ";
  for (int i = 0; i < 5; ++i)
    text += "fig plum ";
  text += "kiwi\n";
  child_process p{{topk_binary(), "--local=2", "--source=dir://" + in,
                   "--output=" + (dir / "out"), "--batch-interval=500ms",
                   "--checkpoint=" + (dir / "ckpt"), "--k=3"},
                  dir.path(), "topk"};
  move_in(dir, in, "words.txt", text);
  INFO(p.err());
  // fig and plum tie at 5: the word decides.
  CHECK(wait_until([&] {
    auto newest = newest_batch(dir / "out");
    return !newest.empty()
           && read_file(newest + "/part-00000") == "apple\t9\npear\t7\nfig\t5\n";
  }, std::chrono::seconds{30}));
  p.signal(SIGTERM);
  CHECK(exited_with(p.wait(), 0));
}

TEST_CASE("stateful wordcount on a driver and two workers keeps exact running totals",
          "[process][apps][cluster]") {
  wordcount_cluster c;
  auto in = c.dir / "in";
  fs::create_directories(in);
  c.app_args = {"--source=dir://" + in, "--batch-interval=200ms", "--stateful",
                "--checkpoint=" + (c.dir / "ckpt"),
                "--sluice.default-parallelism=5",
                "--sluice.stop-gracefully-on-shutdown=true"};
  c.start_driver();
  c.start_worker();
  c.start_worker();
  REQUIRE(c.await_workers(2));
  std::map<std::string, int64_t> expected;
  INFO(c.logs());
  for (int i = 0; i < 5; ++i) {
    auto text = make_text(300, 70 + i);
    for (auto& [w, n] : count_words(text))
      expected[w] += n;
    move_in(c.dir, in, "f" + std::to_string(i), text);
    auto want = expected;
    REQUIRE(wait_until([&] {
      auto newest = newest_batch(c.output());
      return !newest.empty() && read_word_totals(newest) == want;
    }));
  }
  c.driver->signal(SIGTERM);
  CHECK(exited_with(c.driver->wait(), 0));
  for (auto& w : c.workers)
    CHECK(exited_with(w->wait(), 0));
}

TEST_CASE("topk on a driver and two workers lists the window's most frequent words",
          "[process][apps][cluster]") {
  temp_dir staging{"sluice-topk-staging"};
  wordcount_cluster c;
  auto in = c.dir / "in";
  fs::create_directories(in);
  c.app_args = {"--source=dir://" + in, "--batch-interval=500ms",
                "--checkpoint=" + (c.dir / "ckpt"), "--k=2"};
  // topk takes wordcount's options: run the cluster with the topk binary.
  auto topk_args = [&](std::vector<std::string> extra) {
    auto args = c.args(std::move(extra));
    args[0] = topk_binary();
    return args;
  };
  c.driver = std::make_unique<child_process>(
    topk_args({"--role=driver", "--listen=127.0.0.1:0",
               "--sluice.event-log=" + c.event_log()}),
    c.dir.path(), "driver");
  std::regex re{"listening on 127\\.0\\.0\\.1:([0-9]+)"};
  std::smatch m;
  REQUIRE(wait_until([&] {
    auto log = c.driver->err();
    if (!std::regex_search(log, m, re))
      return false;
    c.port = static_cast<uint16_t>(std::stoi(m[1]));
    return true;
  }));
  for (int i = 0; i < 2; ++i)
    c.workers.push_back(std::make_unique<child_process>(
      topk_args({"--role=worker", "--driver=127.0.0.1:" + std::to_string(c.port)}),
      c.dir.path(), "worker" + std::to_string(i)));
  REQUIRE(c.await_workers(2));
  move_in(staging, in, "a.txt", "x x x y y z\n");
  move_in(staging, in, "b.txt", "y y z\n");
  INFO(c.logs());
  CHECK(wait_until([&] {
    auto newest = newest_batch(c.output());
    return !newest.empty() && read_file(newest + "/part-00000") == "y\t4\nx\t3\n";
  }, std::chrono::seconds{30}));
  c.driver->signal(SIGTERM);
  CHECK(exited_with(c.driver->wait(), 0));
  for (auto& w : c.workers)
    CHECK(exited_with(w->wait(), 0));
}

TEST_CASE("received blocks at a disk storage level spill past the memory budget "
          "and are counted exactly",
          "[process][apps]") {
  temp_dir dir{"sluice-spill"};
  auto text = make_text(20000, 23);
  text_server server{text};
  auto spill = dir / "spill";
  fs::create_directories(spill);
  child_process p{{wordcount_binary(), "--local=2",
                   "--source=socket://127.0.0.1:" + std::to_string(server.port()),
                   "--output=" + (dir / "out"), "--batch-interval=300ms",
                   "--sluice.storage-level=memory_and_disk_ser",
                   "--sluice.block-manager.memory=1",
                   "--sluice.block-manager.local-dir=" + spill,
                   "--sluice.stop-gracefully-on-shutdown=true"},
                  dir.path(), "wordcount"};
  // A one-byte budget: every received block goes to a spill file, which a
  // BlockManager makes under local-dir at its first spill.
  CHECK(wait_until([&] { return !fs::is_empty(spill); }));
  auto expected = count_words(text);
  CHECK(wait_until([&] { return read_word_totals(dir / "out") == expected; },
                   std::chrono::seconds{60}));
  p.signal(SIGTERM);
  INFO(p.err());
  CHECK(exited_with(p.wait(), 0));
  CHECK(read_word_totals(dir / "out") == expected);
}
