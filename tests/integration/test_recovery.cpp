#include <catch2/catch.hpp>

#include <filesystem>

#include <caf/actor_system.hpp>

#include "apps/wordcount_graph.hpp"
#include "runtime/streaming_context.hpp"
#include "tests/support/helpers.hpp"
#include "tests/support/local_harness.hpp"

// streaming_context::get_or_create in an embedding program
// (docs/contracts.md, "Recovery"): an in-process driver stopped abruptly and
// a new one built from the same checkpoint directory, both on manual
// clocks, batch by batch.

using namespace sluice;
using namespace sluice::test;
namespace fs = std::filesystem;

namespace {

using totals = std::map<std::string, int64_t>;

std::optional<int64_t> add_up(const std::vector<int64_t>& xs,
                              std::optional<int64_t> state) {
  auto n = state.value_or(0);
  for (auto x : xs)
    n += x;
  return n;
}

/// One driver incarnation: an actor system, a manual clock starting at
/// `start`, and a context from get_or_create that records each batch's
/// running totals and which batches completed.
struct incarnation {
  struct recorder : listener {
    std::mutex mtx;
    std::set<time_ms> done;
    void on_batch_completed(const batch_info& x) override {
      std::lock_guard<std::mutex> guard{mtx};
      done.insert(x.batch_time);
    }
  };

  config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::shared_ptr<manual_clock> clk;
  std::unique_ptr<streaming_context> ssc;
  std::shared_ptr<recorder> rec = std::make_shared<recorder>();
  std::shared_ptr<batch_sink<std::pair<std::string, int64_t>>> sink
    = std::make_shared<batch_sink<std::pair<std::string, int64_t>>>();

  incarnation(const std::string& in, const std::string& ckpt, time_ms start) {
    auto& s = cfg.sluice_settings;
    s.mode = run_mode::local;
    s.local_workers = 2;
    s.batch_interval = std::chrono::milliseconds{1000};
    s.block_interval = std::chrono::milliseconds{50};
    sys = std::make_unique<caf::actor_system>(cfg);
    clk = std::make_shared<manual_clock>(start);
    auto sink_ref = sink;
    auto made = streaming_context::get_or_create(
      *sys, s, ckpt,
      [&](streaming_context& ctx) {
        apps::word_counts(ctx.text_file_stream(in))
          .update_state_by_key<int64_t>(add_up)
          .name("running-totals")
          .checkpoint(std::chrono::milliseconds{2000})
          .foreach_batch([sink_ref](time_ms t, std::vector<std::vector<
                                                 std::pair<std::string, int64_t>>>& parts) {
            std::lock_guard<std::mutex> guard{sink_ref->mtx};
            auto& xs = sink_ref->batches[t];
            for (auto& p : parts)
              xs.insert(xs.end(), p.begin(), p.end());
          });
      },
      clk);
    INFO((made ? "" : describe(made.error())));
    REQUIRE(made);
    ssc = std::move(*made);
    ssc->add_listener(rec);
  }

  ~incarnation() {
    ssc->stop(false);
    ssc.reset();
    sys.reset();
  }

  /// Runs the batch at `t` and waits until it completed.
  void run_batch(time_ms t) {
    REQUIRE(wait_until([&] { return clk->pending() > 0; }));
    clk->advance_to(t);
    INFO("batch " << t << " ms did not complete");
    REQUIRE(wait_until([&] {
      std::lock_guard<std::mutex> guard{rec->mtx};
      return rec->done.count(t) > 0;
    }));
  }

  totals totals_at(time_ms t) {
    totals result;
    for (auto& [w, n] : sink->sorted(t))
      result[w] = n;
    return result;
  }
};

} // namespace

TEST_CASE("get_or_create resumes running totals after an abrupt stop, from the "
          "data checkpoint and the driver log",
          "[integration][recovery]") {
  temp_dir dir{"sluice-getorcreate"};
  auto in = dir / "in";
  auto ckpt = dir / "ckpt";
  fs::create_directories(in);
  totals expected;
  int files = 0;
  auto add_file = [&] {
    auto text = make_text(50, 40 + files);
    for (auto& [w, n] : count_words(text))
      expected[w] += n;
    move_in(dir, in, "f" + std::to_string(files++), text);
  };
  {
    incarnation first{in, ckpt, 0};
    CHECK(first.ssc->recovery() == nullptr);
    REQUIRE(!first.ssc->start());
    for (time_ms t = 1000; t <= 5000; t += 1000) {
      add_file();
      first.run_batch(t);
      CHECK(first.totals_at(t) == expected);
    }
    // Gone without a final batch or checkpoint, like a killed driver; its
    // in-process workers (and their blocks) are gone with it.
  }
  REQUIRE(fs::exists(ckpt + "/state"));
  // A file arrives while no driver runs.
  add_file();
  incarnation second{in, ckpt, 5500};
  auto plan = second.ssc->recovery();
  REQUIRE(plan != nullptr);
  // State was checkpointed at 4000 (every 2 s): batch 5000 is recomputed
  // for its state only, nothing is pending.
  CHECK(plan->states.size() == 1);
  CHECK(plan->recompute == std::vector<time_ms>{5000});
  CHECK(plan->rerun.empty());
  REQUIRE(!second.ssc->start());
  second.run_batch(6000);
  // The recomputed batch wrote no output again; the new one holds every
  // file exactly once.
  CHECK(!second.sink->has(5000));
  CHECK(second.totals_at(6000) == expected);
  add_file();
  second.run_batch(7000);
  CHECK(second.totals_at(7000) == expected);
}

TEST_CASE("get_or_create with a checkpoint of another application fails naming "
          "the difference and starts nothing",
          "[integration][recovery]") {
  temp_dir dir{"sluice-getorcreate"};
  auto in = dir / "in";
  auto ckpt = dir / "ckpt";
  fs::create_directories(in);
  {
    incarnation first{in, ckpt, 0};
    REQUIRE(!first.ssc->start());
    first.run_batch(1000);
  }
  config cfg;
  cfg.sluice_settings.mode = run_mode::local;
  cfg.sluice_settings.batch_interval = std::chrono::milliseconds{1000};
  caf::actor_system sys{cfg};
  auto made = streaming_context::get_or_create(
    sys, cfg.sluice_settings, ckpt,
    [&](streaming_context& ctx) { apps::word_counts(ctx.text_file_stream(in)).print(); },
    std::make_shared<manual_clock>(1500));
  REQUIRE(!made);
  CHECK_THAT(describe(made.error()),
             Catch::Contains("running-totals") && Catch::Contains("does not have"));
}
