#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include <caf/actor_system.hpp>

#include "runtime/recovery/driver_log.hpp"
#include "runtime/recovery/recover.hpp"
#include "runtime/recovery/recovery_plan.hpp"
#include "runtime/streaming_context.hpp"
#include "tests/support/helpers.hpp"

// The driver log and the recovery plan (docs/recovery.md), without actors.

using namespace sluice;
using namespace sluice::test;

namespace {

block_ref block(const std::string& id, uint64_t records = 3) {
  block_ref b;
  b.id = id;
  b.records = records;
  b.bytes = 64;
  b.locations = {"w1"};
  b.wal = wal_ref{"/ckpt/receiver-wal/0/w1-0", "log-0-60000", 16, 64};
  return b;
}

input_partition from_block(const block_ref& b) {
  input_partition p;
  p.block = b;
  p.records = b.records;
  return p;
}

input_partition from_file(const std::string& f) {
  input_partition p;
  p.is_file = true;
  p.file = f;
  return p;
}

/// A context that is never started: only its graph is used.
struct graph_fixture {
  config cfg;
  caf::actor_system sys{cfg};
  std::unique_ptr<streaming_context> ssc;

  explicit graph_fixture(bool stateful, int64_t window_ms = 0) {
    cfg.sluice_settings.batch_interval = std::chrono::milliseconds{1000};
    ssc = std::make_unique<streaming_context>(sys, cfg.sluice_settings);
    auto words = ssc->queue_stream<std::string>();
    auto pairs = words.map([](std::string w) { return std::pair{w, int64_t{1}}; });
    if (stateful)
      pairs
        .update_state_by_key<int64_t>([](const std::vector<int64_t>& xs,
                                std::optional<int64_t> s) -> std::optional<int64_t> {
          auto n = s.value_or(0);
          for (auto x : xs)
            n += x;
          return n;
        })
        .name("totals")
        .print();
    if (window_ms > 0)
      words.window(std::chrono::milliseconds{window_ms}, std::chrono::milliseconds{1000})
        .count()
        .print();
    pairs.print();
  }

  const graph& g() {
    return ssc->graph();
  }
};

/// The graph's stateful node.
const node_base& stateful_node(const graph& g) {
  for (auto& n : g.nodes())
    if (n->stateful())
      return *n;
  FAIL("no stateful node");
  throw std::logic_error("unreachable");
}

/// Writes a data checkpoint of `node` at `batch` and a metadata checkpoint
/// naming it, as a driver does after batch `completed`.
std::string write_checkpoint_with_state(const std::string& dir, const graph& g,
                                        const node_base& node, time_ms batch,
                                        time_ms completed,
                                        const std::vector<state_partition>& parts) {
  checkpoint_dir ckpt{dir};
  auto path = ckpt.state_path(node.id(), batch);
  std::filesystem::create_directories(std::filesystem::path{path}.parent_path());
  REQUIRE(!write_state_checkpoint(path, node.id(), batch, parts));
  checkpoint_metadata meta;
  meta.checkpoint_time_ms = completed;
  meta.batch_interval_ms = 1000;
  meta.last_completed_ms = completed;
  meta.last_generated_ms = completed;
  // Nothing to recompute, so no driver log is needed.
  meta.recovery_horizon_ms = completed + 1000;
  for (auto& n : g.nodes())
    meta.operators.push_back(checkpoint_operator{n->id(), n->op(), n->slide(), 0,
                                                 n->stateful(), 0});
  meta.states.push_back(state_checkpoint_ref{node.id(), batch, path,
                                             static_cast<uint32_t>(parts.size())});
  REQUIRE(!ckpt.write(meta));
  return path;
}

} // namespace

TEST_CASE("the driver log replays blocks added, batches allocated and batches cleaned",
          "[recovery]") {
  temp_dir dir{"sluice-driverlog"};
  {
    auto log = driver_log::open(dir.path(), 60000);
    REQUIRE(log);
    auto& l = **log;
    CHECK(!l.block_added(100, 0, block("a")));
    CHECK(!l.block_added(200, 0, block("b")));
    CHECK(!l.block_added(300, 1, block("c")));
    batch_inputs first;
    first[0] = {from_block(block("a")), from_block(block("b"))};
    first[2] = {from_file("/in/f1")};
    CHECK(!l.batch_allocated(1000, 1000, first));
    CHECK(!l.block_added(1100, 0, block("d")));
    batch_inputs second;
    second[1] = {from_block(block("c"))};
    CHECK(!l.batch_allocated(2000, 2000, second));
    CHECK(!l.batch_cleaned(2100, 1000));
  }
  auto st = replay_driver_log(dir.path());
  REQUIRE(st);
  CHECK(st->records == 7);
  // Batch 1000 was cleaned: only 2000 remains, with its block's WAL handle.
  auto& blocks = st->tracker;
  REQUIRE(blocks.allocations().size() == 1);
  auto& alloc = blocks.allocations().at(2000);
  REQUIRE(alloc.at(1).size() == 1);
  CHECK(alloc.at(1)[0].block.id == "c");
  CHECK(alloc.at(1)[0].block.wal.segment == "log-0-60000");
  CHECK(alloc.at(1)[0].block.wal.offset == 16);
  // "d" was never allocated; a, b (cleaned) and c (allocated) are not pending.
  REQUIRE(blocks.unallocated().at(0).size() == 1);
  CHECK(blocks.unallocated().at(0)[0].id == "d");
  CHECK(blocks.unallocated().at(1).empty());
  CHECK(blocks.known() == std::set<std::string>{"c", "d"});
}

TEST_CASE("a block added twice to the driver log is replayed once", "[recovery]") {
  temp_dir dir{"sluice-driverlog"};
  {
    auto log = driver_log::open(dir.path(), 60000);
    REQUIRE(log);
    CHECK(!(*log)->block_added(100, 0, block("a")));
    CHECK(!(*log)->block_added(200, 0, block("a")));
  }
  auto st = replay_driver_log(dir.path());
  REQUIRE(st);
  CHECK(st->tracker.unallocated().at(0).size() == 1);
}

TEST_CASE("a missing driver log replays as empty", "[recovery]") {
  temp_dir dir{"sluice-driverlog"};
  auto st = replay_driver_log(dir.path());
  REQUIRE(st);
  CHECK(st->records == 0);
  CHECK(st->tracker.allocations().empty());
}

TEST_CASE("a corrupt record in the middle of the driver log stops recovery naming "
          "the file",
          "[recovery]") {
  temp_dir dir{"sluice-driverlog"};
  {
    auto log = driver_log::open(dir.path(), 60000);
    REQUIRE(log);
    for (int i = 0; i < 5; ++i)
      CHECK(!(*log)->block_added(100 + i, 0, block("b" + std::to_string(i))));
  }
  auto segs = wal::segments(driver_log::dir_of(dir.path()));
  REQUIRE(segs.size() == 1);
  auto path = driver_log::dir_of(dir.path()) + "/" + segs[0];
  auto size = std::filesystem::file_size(path);
  {
    std::fstream f{path, std::ios::in | std::ios::out | std::ios::binary};
    f.seekp(static_cast<std::streamoff>(size / 2));
    char c = 0;
    f.read(&c, 1);
    f.seekp(static_cast<std::streamoff>(size / 2));
    c = static_cast<char>(c ^ 0x5a);
    f.write(&c, 1);
  }
  auto st = replay_driver_log(dir.path());
  REQUIRE(!st);
  CHECK_THAT(describe(st.error()), Catch::Contains(segs[0]));
}

TEST_CASE("the recovery horizon goes back to the oldest state not in a data "
          "checkpoint",
          "[recovery]") {
  graph_fixture f{true};
  auto state_node = stateful_node(f.g()).index();
  // Never checkpointed: everything since the first batch.
  CHECK(recovery_horizon(f.g(), 9000, 1000, {}) == 1000);
  // Checkpointed at 5000: the next state to rebuild is 6000.
  CHECK(recovery_horizon(f.g(), 9000, 1000, {{state_node, 5000}}) == 6000);
  // Nothing is older than the first batch not known complete.
  CHECK(recovery_horizon(f.g(), 4000, 1000, {{state_node, 5000}}) == 4000);
}

TEST_CASE("the recovery horizon of a stateless graph is the first batch not "
          "complete, moved back by its longest window",
          "[recovery]") {
  graph_fixture plain{false};
  CHECK(recovery_horizon(plain.g(), 9000, 1000, {}) == 9000);
  graph_fixture windowed{false, 3000};
  CHECK(recovery_horizon(windowed.g(), 9000, 1000, {}) == 6000);
  CHECK(recovery_horizon(windowed.g(), 2000, 1000, {}) == 1000);
}

TEST_CASE("a recovery plan recomputes completed batches from the horizon and "
          "re-runs the pending ones",
          "[recovery]") {
  recovery_plan plan;
  plan.meta.last_completed_ms = 4000;
  plan.meta.last_generated_ms = 5000;
  plan.meta.recovery_horizon_ms = 3000;
  for (time_ms t : {1000, 2000, 3000, 4000, 5000, 6000})
    plan.log.tracker.replay_allocated(t, {});
  plan_batches(plan);
  CHECK(plan.recompute == std::vector<time_ms>{3000, 4000});
  // 6000 was allocated (logged) after the last checkpoint: pending too.
  CHECK(plan.rerun == std::vector<time_ms>{5000, 6000});
  CHECK(plan.last_generated == 6000);
}

TEST_CASE("a graph without the checkpoint's stateful operator is a mismatch that "
          "names it",
          "[recovery]") {
  graph_fixture stateful{true};
  graph_fixture plain{false};
  checkpoint_metadata meta;
  meta.batch_interval_ms = 1000;
  for (auto& n : stateful.g().nodes())
    meta.operators.push_back(checkpoint_operator{n->id(), n->op(), n->slide(), 0,
                                                 n->stateful(), 0});
  CHECK(graph_mismatch(stateful.g(), 1000, meta).empty());
  CHECK_THAT(graph_mismatch(plain.g(), 1000, meta),
             Catch::Contains("totals") && Catch::Contains("does not have"));
  CHECK_THAT(graph_mismatch(stateful.g(), 500, meta),
             Catch::Contains("batch interval"));
  meta.operators.clear();
  CHECK_THAT(graph_mismatch(stateful.g(), 1000, meta),
             Catch::Contains("is not in the checkpoint"));
}

TEST_CASE("state checkpointed with another partition count is refused at recovery "
          "naming both counts",
          "[recovery]") {
  temp_dir dir{"sluice-recover"};
  graph_fixture f{true};
  auto& totals = stateful_node(f.g());
  auto buckets = dynamic_cast<const shuffle_base&>(totals).buckets();
  // One partition fewer than the graph's state has.
  auto path = write_checkpoint_with_state(dir.path(), f.g(), totals, 5000, 5000,
                                          std::vector<state_partition>(buckets - 1));
  run_settings settings;
  settings.checkpoint_dir = dir.path();
  block_store store;
  auto plan = load_recovery_plan(f.g(), settings, store);
  REQUIRE(!plan);
  CHECK_THAT(describe(plan.error()),
             Catch::Contains(std::to_string(buckets) + " partitions")
               && Catch::Contains(path));
  CHECK(store.size() == 0);
}

TEST_CASE("a checkpoint with matching state is restored into the driver's store",
          "[recovery]") {
  temp_dir dir{"sluice-recover"};
  graph_fixture f{true};
  auto& totals = stateful_node(f.g());
  auto buckets = dynamic_cast<const shuffle_base&>(totals).buckets();
  std::vector<state_partition> parts(buckets);
  for (uint32_t p = 0; p < buckets; ++p) {
    auto bytes = std::string(8 * (p + 1), static_cast<char>('a' + p));
    parts[p] = state_partition{buffer::copy_of(bytes.data(), bytes.size()), p};
  }
  write_checkpoint_with_state(dir.path(), f.g(), totals, 5000, 6000, parts);
  run_settings settings;
  settings.checkpoint_dir = dir.path();
  block_store store;
  auto plan = load_recovery_plan(f.g(), settings, store);
  REQUIRE(plan);
  REQUIRE(*plan);
  auto& p = **plan;
  REQUIRE(p.states.size() == 1);
  CHECK(p.states[0].node == totals.index());
  CHECK(p.states[0].batch == 5000);
  REQUIRE(p.states[0].partitions.size() == buckets);
  for (uint32_t i = 0; i < buckets; ++i) {
    auto& ref = p.states[0].partitions[i];
    CHECK(ref.locations == std::vector<std::string>{"driver"});
    auto held = store.get(ref.id);
    REQUIRE(held);
    CHECK(held->bytes.size() == 8 * (i + 1));
    CHECK(held->records == i);
  }
}

TEST_CASE("an empty checkpoint directory means a first start", "[recovery]") {
  temp_dir dir{"sluice-recover"};
  graph_fixture f{true};
  run_settings settings;
  settings.checkpoint_dir = dir.path();
  block_store store;
  auto plan = load_recovery_plan(f.g(), settings, store);
  REQUIRE(plan);
  CHECK(*plan == nullptr);
}
