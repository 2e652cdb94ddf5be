#include <catch2/catch.hpp>

#include <filesystem>
#include <signal.h>

#include "tests/process/cluster.hpp"

using namespace sluice::test;
namespace fs = std::filesystem;

namespace {

/// The newest batch directory below `out`, or "" if there is none.
std::string newest_batch(const std::string& out) {
  std::error_code ec;
  std::string best;
  long long best_t = -1;
  for (auto& e : fs::directory_iterator(out, ec)) {
    auto t = std::stoll(e.path().filename().string());
    if (t > best_t) {
      best_t = t;
      best = e.path().string();
    }
  }
  return best;
}

void move_in(const temp_dir& dir, const std::string& in, const std::string& name,
             const std::string& text) {
  write_file(dir / name, text);
  fs::rename(dir / name, in + "/" + name);
}

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
