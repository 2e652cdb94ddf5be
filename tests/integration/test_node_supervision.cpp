// Supervision inside a worker node, and the locality wait, through the
// real actors in local mode:
// a TaskExecutor or BlockManager killed mid-stream is restarted by its
// worker node and announced to the driver again, and results stay exact
// (a restarted BlockManager serves the blocks stored before its crash); a
// child that keeps crashing ends its node once its restart budget is spent,
// and the stream goes on with the other worker. Tasks that wait for a busy
// node holding their input are not stranded there.

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/after.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "actors/worker_node.hpp"
#include "apps/wordcount_graph.hpp"
#include "runtime/sources/source.hpp"
#include "tests/support/local_harness.hpp"

using namespace sluice;
using namespace sluice::test;
using namespace std::chrono_literals;

namespace {

using counts = std::vector<std::pair<std::string, int64_t>>;
using lines = std::vector<std::string>;

/// Batches of lines over a small vocabulary, each with plenty of words so
/// that every batch runs tasks on both workers.
std::vector<lines> make_batches(int n) {
  std::vector<lines> result;
  uint64_t x = 17;
  for (int b = 0; b < n; ++b) {
    lines batch;
    for (int l = 0; l < 40; ++l) {
      std::string line;
      for (int w = 0; w < 6; ++w) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        line += "w" + std::to_string((x >> 33) % 25) + " ";
      }
      batch.push_back(line);
    }
    result.push_back(std::move(batch));
  }
  return result;
}

/// Word counts of the batches [from, to), sorted.
counts count_of(const std::vector<lines>& batches, size_t from, size_t to) {
  std::map<std::string, int64_t> m;
  for (auto b = from; b < to && b < batches.size(); ++b)
    for (auto& line : batches[b])
      for (auto& [w, n] : count_words(line))
        m[w] += n;
  return counts{m.begin(), m.end()};
}

/// Holds the first caller inside an operator until the test releases it
/// (or a deadline passes, so a failing test cannot hang a runner thread;
/// longer than the waits of the tests, so it never releases in their stead).
struct gate {
  std::mutex mtx;
  std::condition_variable cv;
  bool entered = false;
  bool released = false;

  void pass_once() {
    std::unique_lock<std::mutex> guard{mtx};
    if (entered)
      return;
    entered = true;
    cv.notify_all();
    cv.wait_for(guard, std::chrono::seconds{90}, [this] { return released; });
  }

  bool await_entered() {
    std::unique_lock<std::mutex> guard{mtx};
    return cv.wait_for(guard, std::chrono::seconds{30}, [this] { return entered; });
  }

  void release() {
    std::lock_guard<std::mutex> guard{mtx};
    released = true;
    cv.notify_all();
  }
};

/// The BlockManager ([0]) and TaskExecutor ([1]) a worker node runs now.
std::vector<caf::actor> children_of(caf::actor_system& sys, const caf::actor& node) {
  caf::scoped_actor self{sys};
  std::vector<caf::actor> result;
  self->request(node, 5s, node_children_atom::value)
    .receive([&](std::vector<caf::actor>& xs) { result = std::move(xs); },
             [&](caf::error& err) { FAIL("node_children_atom: " << to_string(err)); });
  REQUIRE(result.size() == 2);
  return result;
}

/// Waits until the node runs a child `which` other than `old`.
bool restarted(caf::actor_system& sys, const caf::actor& node, size_t which,
               const caf::actor& old) {
  return wait_until([&] {
    auto now = children_of(sys, node)[which];
    return now && now != old;
  });
}

} // namespace

TEST_CASE("a TaskExecutor killed mid-stream is restarted and counts stay exact",
          "[integration][supervision]") {
  local_harness h{2};
  auto batches = make_batches(5);
  // One line of batch 2 holds its task inside the operator until the test
  // killed the executors: the task is surely running then, and its
  // executor dies holding the scheduler's request.
  batches[1].push_back("hold w1 w2");
  auto hold = std::make_shared<gate>();
  auto input = h.ssc().queue_stream<std::string>(batches);
  auto held = input.map([hold](std::string line) {
    if (line == "hold w1 w2")
      hold->pass_once();
    return line;
  });
  auto sink = h.collect(apps::word_counts(held));
  h.start();
  auto& sys = h.ssc().system();
  auto nodes = h.ssc().worker_nodes();
  REQUIRE(nodes.size() == 2);
  h.next_batch();
  CHECK(sink->sorted(1000) == count_of(batches, 0, 1));
  std::vector<std::vector<caf::actor>> before;
  auto b2 = h.next_batch([&] {
    REQUIRE(hold->await_entered());
    for (auto& node : nodes) {
      before.push_back(children_of(sys, node));
      caf::anon_send_exit(before.back()[1], caf::exit_reason::kill);
    }
    // The runner thread finishes; its executor is gone, so its result is
    // dropped, and the scheduler runs the task again (it does not pass the
    // gate a second time).
    hold->release();
  });
  CHECK(b2.failed_jobs == 0);
  CHECK(sink->sorted(2000) == count_of(batches, 1, 2));
  for (size_t i = 0; i < nodes.size(); ++i) {
    CHECK(restarted(sys, nodes[i], 1, before[i][1]));
    // The BlockManager was not touched.
    CHECK(children_of(sys, nodes[i])[0] == before[i][0]);
  }
  for (time_ms t = 3000; t <= 5000; t += 1000) {
    auto b = h.next_batch();
    CHECK(b.failed_jobs == 0);
    auto i = static_cast<size_t>(t / 1000);
    CHECK(sink->sorted(t) == count_of(batches, i - 1, i));
  }
}

TEST_CASE("tasks waiting for a busy node holding their input run elsewhere "
          "once the locality wait passed",
          "[integration][locality]") {
  // One slot per worker; the batch's one map task leaves all its output on
  // one node, so each of the 4 reduce tasks prefers that node. The first
  // holds its slot until the others ran: they can only have run elsewhere,
  // after the locality wait, woken by the scheduler's delayed dispatch (no
  // task ends meanwhile to trigger one).
  local_harness h{2, std::chrono::seconds{1}, "", [](run_settings& s) {
                    s.executor_cores = 1;
                    s.default_parallelism = 4;
                    s.locality_wait = std::chrono::milliseconds{300};
                  }};
  auto batches = make_batches(1);
  auto input = h.ssc().queue_stream<std::string>(batches);
  auto calls = std::make_shared<std::atomic<int>>(0);
  auto hold = std::make_shared<gate>();
  using pair = std::pair<std::string, int64_t>;
  auto counted = apps::word_counts(input).map_partitions(
    [calls, hold](std::vector<pair>&& xs) {
      ++*calls;
      hold->pass_once();
      return std::move(xs);
    });
  auto sink = h.collect(counted);
  h.start();
  bool others_ran = false;
  auto b = h.next_batch([&] {
    REQUIRE(hold->await_entered());
    others_ran = wait_until([&] { return calls->load() == 4; });
    hold->release();
  });
  CHECK(others_ran);
  CHECK(b.failed_jobs == 0);
  CHECK(sink->sorted(1000) == count_of(batches, 0, 1));
}

TEST_CASE("a BlockManager killed mid-stream is restarted over the same blocks "
          "and windowed counts stay exact",
          "[integration][supervision]") {
  local_harness h{2};
  auto batches = make_batches(7);
  auto input = h.ssc().queue_stream<std::string>(batches);
  // A window reads the cached partitions of earlier batches, kept on the
  // workers: after the restart they must still be served, from the store
  // the new BlockManager shares with the old one.
  auto sink = h.collect(apps::word_counts(input.window(3s, 1s)));
  h.start();
  auto& sys = h.ssc().system();
  auto nodes = h.ssc().worker_nodes();
  REQUIRE(nodes.size() == 2);
  h.next_batch();
  h.next_batch();
  CHECK(sink->sorted(2000) == count_of(batches, 0, 2));
  // The worker holding the most cached partitions (stores: the driver's,
  // then one per worker, in the order of worker_nodes()).
  auto& stores = h.ssc().local_stores();
  size_t victim = stores.at(1)->size() >= stores.at(2)->size() ? 0 : 1;
  CHECK(stores.at(victim + 1)->size() > 0);
  auto before = children_of(sys, nodes[victim]);
  auto b3 = h.next_batch(
    [&] { caf::anon_send_exit(before[0], caf::exit_reason::kill); });
  CHECK(b3.failed_jobs == 0);
  CHECK(sink->sorted(3000) == count_of(batches, 0, 3));
  CHECK(restarted(sys, nodes[victim], 0, before[0]));
  CHECK(children_of(sys, nodes[victim])[1] == before[1]);
  for (time_ms t = 4000; t <= 7000; t += 1000) {
    auto b = h.next_batch();
    CHECK(b.failed_jobs == 0);
    auto i = static_cast<size_t>(t / 1000);
    CHECK(sink->sorted(t) == count_of(batches, i - 3, i));
  }
}

TEST_CASE("a worker node whose TaskExecutor keeps crashing gives up and the "
          "stream goes on without it",
          "[integration][supervision]") {
  local_harness h{2};
  auto batches = make_batches(3);
  auto input = h.ssc().queue_stream<std::string>(batches);
  auto sink = h.collect(apps::word_counts(input));
  h.start();
  auto& sys = h.ssc().system();
  auto node = h.ssc().worker_nodes().at(0);
  caf::scoped_actor watcher{sys};
  watcher->monitor(node);
  h.next_batch();
  // One crash more than the budget, each after the previous restart.
  for (uint32_t i = 0; i <= child_max_restarts; ++i) {
    auto te = children_of(sys, node)[1];
    REQUIRE(te);
    caf::anon_send_exit(te, caf::exit_reason::kill);
    if (i < child_max_restarts)
      REQUIRE(restarted(sys, node, 1, te));
  }
  caf::error reason;
  watcher->receive([&](caf::down_msg& dm) { reason = dm.reason; },
                   caf::after(30s) >> [] { FAIL("the worker node did not end"); });
  INFO(to_string(reason));
  CHECK(reason.category() == error_category());
  CHECK(reason.code() == static_cast<uint8_t>(errc::node_failed));
  for (time_ms t = 2000; t <= 3000; t += 1000) {
    auto b = h.next_batch();
    CHECK(b.failed_jobs == 0);
    auto i = static_cast<size_t>(t / 1000);
    CHECK(sink->sorted(t) == count_of(batches, i - 1, i));
  }
}

namespace {

/// A source that only counts how many of its threads run, so a test can
/// tell whether a receiver still runs after its node ended.
class counting_source : public source {
public:
  explicit counting_source(std::shared_ptr<std::atomic<int>> running)
    : running_(std::move(running)) {
  }

  std::string describe() const override {
    return "counting source";
  }

  void run(block_generator& out, stop_signal& stop, source_reporter&) override {
    ++*running_;
    while (!stop.stop_requested()) {
      out.push(std::string{"tick"});
      stop.wait_for(std::chrono::milliseconds{20});
    }
    --*running_;
  }

private:
  std::shared_ptr<std::atomic<int>> running_;
};

} // namespace

TEST_CASE("a worker node that crashes stops the receivers it hosted",
          "[integration][supervision]") {
  local_harness h{1};
  auto running = std::make_shared<std::atomic<int>>(0);
  auto ticks = h.ssc().receiver_stream<std::string>(
    "counting", [running](uint64_t) -> source_ptr {
      return std::make_unique<counting_source>(running);
    });
  h.collect(ticks.count());
  h.start();
  REQUIRE(wait_until([&] { return running->load() == 1; }));
  // Killed, the node runs none of its exit paths, and a receiver is only
  // monitored by it: its state's destructor must still stop it.
  caf::anon_send_exit(h.ssc().worker_nodes().at(0), caf::exit_reason::kill);
  CHECK(wait_until([&] { return running->load() == 0; }));
}

namespace {

/// A driver and one worker in worker mode, each with an actor system of its
/// own in this process, talking over loopback TCP (as two processes would);
/// the driver's clock is manual, so batches run one at a time.
struct two_node_cluster {
  struct recorder : listener {
    std::mutex mtx;
    std::map<time_ms, batch_info> done;
    void on_batch_completed(const batch_info& x) override {
      std::lock_guard<std::mutex> guard{mtx};
      done[x.batch_time] = x;
    }
  };

  config driver_cfg;
  config worker_cfg;
  std::unique_ptr<caf::actor_system> driver_sys;
  std::unique_ptr<caf::actor_system> worker_sys;
  std::shared_ptr<manual_clock> clk = std::make_shared<manual_clock>(0);
  std::unique_ptr<streaming_context> driver;
  std::unique_ptr<streaming_context> worker;
  std::shared_ptr<recorder> batches = std::make_shared<recorder>();
  time_ms next = 1000;

  /// `build` makes the same graph on both nodes.
  explicit two_node_cluster(const std::function<void(streaming_context&)>& build) {
    auto& d = driver_cfg.sluice_settings;
    d.mode = run_mode::driver;
    d.listen = endpoint{"127.0.0.1", 0};
    driver_sys = std::make_unique<caf::actor_system>(driver_cfg);
    driver = std::make_unique<streaming_context>(*driver_sys, d, clk);
    driver->add_listener(batches);
    build(*driver);
    auto err = driver->start();
    INFO(describe(err));
    REQUIRE(!err);
    auto& w = worker_cfg.sluice_settings;
    w.mode = run_mode::worker;
    w.driver = endpoint{"127.0.0.1", driver->port()};
    worker_sys = std::make_unique<caf::actor_system>(worker_cfg);
    worker = std::make_unique<streaming_context>(*worker_sys, w);
    build(*worker);
    err = worker->start();
    INFO(describe(err));
    REQUIRE(!err);
  }

  ~two_node_cluster() {
    worker->stop(false);
    driver->stop(false);
    worker.reset();
    driver.reset();
    worker_sys.reset();
    driver_sys.reset();
  }

  batch_info next_batch() {
    auto t = next;
    next += 1000;
    REQUIRE(wait_until([&] { return clk->pending() > 0; }));
    clk->advance_to(t);
    INFO("batch " << t << " ms did not complete");
    REQUIRE(wait_until([&] {
      std::lock_guard<std::mutex> guard{batches->mtx};
      return batches->done.count(t) > 0;
    }));
    std::lock_guard<std::mutex> guard{batches->mtx};
    return batches->done[t];
  }
};

} // namespace

TEST_CASE("a worker process restarts its crashed worker node under the same id "
          "with the same blocks",
          "[integration][supervision]") {
  auto data = make_batches(6);
  std::shared_ptr<batch_sink<std::pair<std::string, int64_t>>> sink;
  two_node_cluster c{[&](streaming_context& ssc) {
    auto input = ssc.queue_stream<std::string>(data);
    auto counts = apps::word_counts(input.window(3s, 1s));
    auto s = std::make_shared<batch_sink<std::pair<std::string, int64_t>>>();
    counts.foreach_batch([s](time_ms t, auto& parts) {
      std::lock_guard<std::mutex> guard{s->mtx};
      for (auto& p : parts)
        s->batches[t].insert(s->batches[t].end(), p.begin(), p.end());
    });
    if (!sink)
      sink = s; // the driver's, which runs foreach_batch
  }};
  auto first = c.next_batch();
  CHECK(first.failed_jobs == 0);
  c.next_batch();
  CHECK(sink->sorted(2000) == count_of(data, 0, 2));
  auto store = c.worker->local_stores().at(0);
  CHECK(store->size() > 0); // the cached partitions windows read later
  auto old = c.worker->worker_nodes().at(0);
  caf::anon_send_exit(old, caf::exit_reason::kill);
  REQUIRE(wait_until([&] {
    auto now = c.worker->worker_nodes();
    return !now.empty() && now[0] != old;
  }));
  CHECK_FALSE(c.worker->await_termination_for(std::chrono::milliseconds{0}));
  CHECK(c.worker->local_stores().at(0) == store);
  // The next windows read partitions cached before the crash: they are
  // found only if the new node registered under the old id, over the old
  // store.
  for (time_ms t = 3000; t <= 5000; t += 1000) {
    auto b = c.next_batch();
    CHECK(b.failed_jobs == 0);
    auto i = static_cast<size_t>(t / 1000);
    CHECK(sink->sorted(t) == count_of(data, i - 3, i));
  }
}
