// Receiver supervision and hot standby through the real actors in local
// mode: a receiver whose source throws is restarted on another worker and
// nothing it pushed is lost or doubled; a stream whose receiver keeps
// failing is given up with a listener event while another stream goes on;
// every received block is held by two BlockManagers; and when a worker is
// lost, the blocks it held a copy of get a second copy again.

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <caf/exit_reason.hpp>
#include <caf/send.hpp>

#include "runtime/sources/source.hpp"
#include "tests/support/local_harness.hpp"

using namespace sluice;
using namespace sluice::test;
using namespace std::chrono_literals;

namespace {

/// How a test source behaves, shared by every incarnation of it.
struct script {
  std::atomic<int> starts{0};
  int failures = 0;          ///< the first `failures` incarnations throw
  int records = 10;          ///< each incarnation pushes this many first
  int later_records = -1;    ///< incarnations after the first (-1: records)
};

/// Pushes `records` tagged records ("<incarnation>-<i>"), then throws if
/// its incarnation is one of the first `failures`, else idles until stopped.
class scripted_source : public source {
public:
  explicit scripted_source(std::shared_ptr<script> s) : script_(std::move(s)) {
  }

  std::string describe() const override {
    return "scripted source";
  }

  void run(block_generator& out, stop_signal& stop, source_reporter& report) override {
    auto k = script_->starts++;
    report.started("incarnation " + std::to_string(k));
    auto n = k > 0 && script_->later_records >= 0 ? script_->later_records
                                                  : script_->records;
    for (int i = 0; i < n; ++i)
      out.push(std::to_string(k) + "-" + std::to_string(i));
    if (k < script_->failures)
      throw std::runtime_error("scripted failure of incarnation " + std::to_string(k));
    while (!stop.wait_for(50ms)) {
    }
  }

private:
  std::shared_ptr<script> script_;
};

/// Keeps the receiver events the driver reports.
struct event_log : listener {
  std::mutex mtx;
  std::vector<receiver_info> events;

  void on_receiver_event(const receiver_info& x) override {
    std::lock_guard<std::mutex> guard{mtx};
    events.push_back(x);
  }

  std::vector<receiver_info> of(uint32_t stream, receiver_info::kind k) {
    std::lock_guard<std::mutex> guard{mtx};
    std::vector<receiver_info> result;
    for (auto& e : events)
      if (e.stream == stream && e.what == k)
        result.push_back(e);
    return result;
  }
};

dstream<std::string> scripted_stream(streaming_context& ssc,
                                     std::shared_ptr<script> s) {
  return ssc.receiver_stream<std::string>("scripted", [s](uint64_t) -> source_ptr {
    return std::make_unique<scripted_source>(s);
  });
}

/// Runs batches until `sink` has seen `n` records in all (or a deadline).
template <class T>
bool run_until_records(local_harness& h, batch_sink<T>& sink, size_t n) {
  return wait_until(
    [&] {
      h.next_batch();
      std::lock_guard<std::mutex> guard{sink.mtx};
      size_t total = 0;
      for (auto& [t, xs] : sink.batches)
        total += xs.size();
      return total >= n;
    },
    30s);
}

template <class T>
std::map<T, int> multiplicities(batch_sink<T>& sink) {
  std::lock_guard<std::mutex> guard{sink.mtx};
  std::map<T, int> result;
  for (auto& [t, xs] : sink.batches)
    for (auto& x : xs)
      ++result[x];
  return result;
}

void fast_restarts(run_settings& s) {
  s.receiver_restart_delay = 10ms;
  s.block_interval = 20ms;
}

} // namespace

TEST_CASE("a receiver whose source throws is restarted on another worker and "
          "loses nothing it pushed",
          "[integration][supervision]") {
  local_harness h{2, 1s, "", fast_restarts};
  auto s = std::make_shared<script>();
  s->failures = 2;
  auto events = std::make_shared<event_log>();
  h.ssc().add_listener(events);
  auto sink = h.collect(scripted_stream(h.ssc(), s));
  h.start();
  // Three incarnations: two throw after their records, the third runs on.
  REQUIRE(run_until_records(h, *sink, 30));
  auto counts = multiplicities(*sink);
  CHECK(counts.size() == 30);
  for (auto& [x, n] : counts) {
    INFO(x);
    CHECK(n == 1);
  }
  for (int k = 0; k < 3; ++k)
    CHECK(counts.count(std::to_string(k) + "-9") == 1);
  // Each restart went to the other worker: never where it just failed.
  auto starts = events->of(0, receiver_info::kind::started);
  REQUIRE(starts.size() >= 3);
  CHECK(starts[1].node != starts[0].node);
  CHECK(starts[2].node != starts[1].node);
  CHECK(events->of(0, receiver_info::kind::failed).empty());
}

TEST_CASE("a stream whose receiver keeps failing is reported failed and the "
          "other streams go on",
          "[integration][supervision]") {
  local_harness h{2, 1s, "", [](run_settings& st) {
                    fast_restarts(st);
                    st.receiver_max_restarts = 2;
                  }};
  auto bad = std::make_shared<script>();
  bad->failures = 1000;
  bad->records = 1;
  auto good = std::make_shared<script>();
  auto events = std::make_shared<event_log>();
  h.ssc().add_listener(events);
  auto bad_sink = h.collect(scripted_stream(h.ssc(), bad));
  auto good_sink = h.collect(scripted_stream(h.ssc(), good));
  h.start();
  REQUIRE(wait_until([&] {
    h.next_batch();
    return !events->of(0, receiver_info::kind::failed).empty();
  }));
  auto failed = events->of(0, receiver_info::kind::failed);
  CHECK(failed.front().message.find("stream 0 failed") != std::string::npos);
  // The first start and two restarts: the third failure spent the budget,
  // and nothing starts it again.
  CHECK(bad->starts.load() == 3);
  // What the failing incarnations pushed before throwing is counted once.
  REQUIRE(run_until_records(h, *bad_sink, 3));
  CHECK(multiplicities(*bad_sink).size() == 3);
  // The other stream delivers all of its records.
  REQUIRE(run_until_records(h, *good_sink, 10));
  CHECK(multiplicities(*good_sink).size() == 10);
  for (int i = 0; i < 3; ++i)
    h.next_batch();
  CHECK(bad->starts.load() == 3);
}

TEST_CASE("every received block is held by two BlockManagers at the default "
          "storage level",
          "[integration][replication]") {
  local_harness h{2, 1s, "", fast_restarts};
  auto s = std::make_shared<script>();
  s->records = 200;
  auto sink = h.collect(scripted_stream(h.ssc(), s));
  h.start();
  // Blocks stay in the BlockManagers until their batch completes: look
  // before the first batch.
  auto& stores = h.ssc().local_stores(); // driver, local-1, local-2
  REQUIRE(stores.size() == 3);
  auto received_ids = [&](size_t i) {
    std::vector<std::string> ids;
    for (auto& id : stores[i]->ids())
      if (id.rfind("in/", 0) == 0)
        ids.push_back(id);
    std::sort(ids.begin(), ids.end());
    return ids;
  };
  REQUIRE(wait_until([&] { return !received_ids(1).empty() && !received_ids(2).empty(); }));
  REQUIRE(wait_until([&] { return received_ids(1) == received_ids(2); }));
  REQUIRE(run_until_records(h, *sink, 200));
  CHECK(multiplicities(*sink).size() == 200);
}

TEST_CASE("when a worker is lost its blocks get a second copy on another worker",
          "[integration][replication]") {
  local_harness h{3, 1s, "", fast_restarts};
  auto s = std::make_shared<script>();
  s->records = 300;
  s->later_records = 0; // the restarted receiver adds nothing
  auto sink = h.collect(scripted_stream(h.ssc(), s));
  h.start();
  auto& stores = h.ssc().local_stores(); // driver, local-1..3
  REQUIRE(stores.size() == 4);
  auto holders = [&](const std::string& id, std::vector<size_t> among) {
    size_t n = 0;
    for (auto i : among)
      n += stores[i]->contains(id) ? 1 : 0;
    return n;
  };
  // Wait until the receiver's records are all in blocks held twice.
  std::vector<std::string> ids;
  REQUIRE(wait_until([&] {
    ids.clear();
    size_t records = 0;
    for (size_t i = 1; i < 4; ++i)
      for (auto& id : stores[i]->ids())
        if (id.rfind("in/", 0) == 0
            && std::find(ids.begin(), ids.end(), id) == ids.end()) {
          ids.push_back(id);
          records += stores[i]->get(id)->records;
        }
    if (records < 300)
      return false;
    for (auto& id : ids)
      if (holders(id, {1, 2, 3}) != 2)
        return false;
    return true;
  }));
  // Lose the worker that holds the most of them (the receiver's own).
  size_t victim = 1;
  for (size_t i = 2; i < 4; ++i)
    if (stores[i]->ids().size() > stores[victim]->ids().size())
      victim = i;
  auto workers = h.ssc().worker_nodes();
  REQUIRE(workers.size() == 3);
  caf::anon_send_exit(workers[victim - 1], caf::exit_reason::kill);
  std::vector<size_t> survivors;
  for (size_t i = 1; i < 4; ++i)
    if (i != victim)
      survivors.push_back(i);
  // Every block is back to two copies, on the two workers left.
  CHECK(wait_until([&] {
    for (auto& id : ids)
      if (holders(id, survivors) != 2)
        return false;
    return true;
  }));
  // And the batch reads them: every record once.
  REQUIRE(run_until_records(h, *sink, 300));
  auto counts = multiplicities(*sink);
  CHECK(counts.size() == 300);
  for (auto& [x, n] : counts)
    CHECK(n == 1);
}
