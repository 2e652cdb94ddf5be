#include <catch2/catch.hpp>

#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/error.hpp"
#include "runtime/event_log.hpp"
#include "tests/support/helpers.hpp"

// The driver's event log (runtime/event_log): one JSON object per line,
// appended, for harnesses and tests to read instead of log prose.

using namespace sluice;
using json = nlohmann::json;

namespace {

std::vector<json> lines_of(const std::string& path) {
  std::vector<json> result;
  std::ifstream in{path};
  for (std::string line; std::getline(in, line);)
    result.push_back(json::parse(line));
  return result;
}

} // namespace

TEST_CASE("the event log writes each event as one JSON line with its fields",
          "[event_log]") {
  test::temp_dir dir{"sluice-events"};
  auto path = dir / "events.jsonl";
  auto log = event_log::open(path);
  REQUIRE(log);
  batch_info b;
  b.batch_time = 1000;
  b.records = 42;
  b.submitted = 1001;
  b.started = 1003;
  b.finished = 1010;
  b.jobs = 1;
  (*log)->on_batch_completed(b);
  (*log)->on_node_event(node_info{"w-1", node_info::kind::lost, 2, "connection \"died\"\n"});
  (*log)->on_receiver_event(receiver_info{0, "w-2", receiver_info::kind::placed, ""});
  recovery_info r;
  r.what = recovery_info::kind::finished;
  r.checkpoint = "ckpt/checkpoint-1000";
  r.rerun = 3;
  (*log)->on_recovery(r);
  auto lines = lines_of(path);
  REQUIRE(lines.size() == 4);
  CHECK(lines[0]["event"] == "batch_completed");
  CHECK(lines[0]["batch_time"] == 1000);
  CHECK(lines[0]["records"] == 42);
  CHECK(lines[0]["scheduling_delay"] == 2);
  CHECK(lines[0]["total_delay"] == 10);
  CHECK(lines[0].count("error") == 0);
  CHECK(lines[0]["at"].get<int64_t>() > 0);
  CHECK(lines[1]["event"] == "node");
  CHECK(lines[1]["what"] == "lost");
  CHECK(lines[1]["reason"] == "connection \"died\"\n"); // escaped, one line
  CHECK(lines[2]["what"] == "placed");
  CHECK(lines[2]["node"] == "w-2");
  CHECK(lines[3]["event"] == "recovery");
  CHECK(lines[3]["what"] == "finished");
  CHECK(lines[3]["rerun"] == 3);
}

TEST_CASE("a restarted driver appends to the event log of its predecessor",
          "[event_log]") {
  test::temp_dir dir{"sluice-events"};
  auto path = dir / "events.jsonl";
  for (int i = 0; i < 2; ++i) {
    auto log = event_log::open(path);
    REQUIRE(log);
    (*log)->on_node_event(node_info{"w-" + std::to_string(i), node_info::kind::joined, 2, ""});
  }
  auto lines = lines_of(path);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0]["node"] == "w-0");
  CHECK(lines[1]["node"] == "w-1");
}

TEST_CASE("an event log that cannot be opened is an error naming its path",
          "[event_log]") {
  auto log = event_log::open("/nonexistent-dir/events.jsonl");
  REQUIRE_FALSE(log);
  CHECK_THAT(describe(log.error()), Catch::Contains("/nonexistent-dir/events.jsonl"));
}
