// Malformed Cap'n Proto messages sent to a BlockManager and a TaskExecutor:
// every one is answered with an error that names the problem, nothing bad is
// stored, and the actors (and the cluster around them) keep working.

#include <catch2/catch.hpp>

#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <caf/exit_reason.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "actors/block_manager.hpp"
#include "actors/task_executor.hpp"
#include "apps/wordcount_graph.hpp"
#include "messages/schemas.hpp"
#include "runtime/block.hpp"
#include "runtime/exec/task_spec.hpp"
#include "tests/support/local_harness.hpp"

using namespace sluice;
using namespace sluice::test;

namespace {

using counts = std::vector<std::pair<std::string, int64_t>>;

constexpr auto reply_timeout = std::chrono::seconds{30};

/// An answer: the reply, or the error the actor sent instead.
template <class Reply>
struct answer {
  std::optional<Reply> reply;
  caf::error error;
};

template <class Reply, class Schema>
answer<Reply> ask(caf::scoped_actor& self, const caf::actor& dest, msg<Schema> m) {
  answer<Reply> result;
  self->request(dest, reply_timeout, std::move(m))
    .receive([&](Reply& r) { result.reply = std::move(r); },
             [&](caf::error& err) { result.error = std::move(err); });
  return result;
}

buffer put_header(const std::string& id, uint64_t records) {
  capnp::MallocMessageBuilder b;
  auto r = b.initRoot<wire::PutBlock>();
  r.setId(id);
  r.setRecords(records);
  return buffer::from_builder(b);
}

buffer get_header(const std::string& id) {
  capnp::MallocMessageBuilder b;
  b.initRoot<wire::GetBlock>().setId(id);
  return buffer::from_builder(b);
}

buffer launch_header(const task_spec& spec) {
  capnp::MallocMessageBuilder b;
  encode(spec, b.initRoot<wire::LaunchTask>());
  return buffer::from_builder(b);
}

buffer bytes_of(std::vector<uint8_t> xs) {
  return buffer::copy_of(xs.data(), xs.size());
}

buffer prefix_of(const buffer& x, size_t n) {
  return buffer::copy_of(x.data(), n);
}

buffer with_tail(const buffer& x, size_t extra) {
  std::vector<uint8_t> bytes(x.data(), x.data() + x.size());
  bytes.resize(bytes.size() + extra, 0x5a);
  return bytes_of(std::move(bytes));
}

/// Headers no decoder may accept, derived from a valid one.
std::vector<std::pair<std::string, buffer>> bad_headers(const buffer& valid) {
  REQUIRE(valid.size() >= 24);
  std::vector<std::pair<std::string, buffer>> result;
  result.emplace_back("empty", buffer{});
  result.emplace_back("garbage", bytes_of(std::vector<uint8_t>(64, 0xab)));
  result.emplace_back("truncated to its segment table", prefix_of(valid, 8));
  result.emplace_back("truncated by one word", prefix_of(valid, valid.size() - 8));
  result.emplace_back("misaligned by 3 extra bytes", with_tail(valid, 3));
  result.emplace_back("misaligned by 3 missing bytes", prefix_of(valid, valid.size() - 3));
  result.emplace_back("a single byte", bytes_of({0x00}));
  // One segment of one word whose root is a list pointer, not a struct.
  result.emplace_back("non-struct root",
                      bytes_of({0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0}));
  // One segment of one word whose root struct points far outside it.
  result.emplace_back("out-of-bounds root",
                      bytes_of({0, 0, 0, 0, 1, 0, 0, 0, 0x90, 1, 0, 0, 1, 0, 0, 0}));
  // A segment table claiming 4 billion segments.
  result.emplace_back("huge segment count", bytes_of({0xfe, 0xff, 0xff, 0xff, 1, 0, 0, 0}));
  return result;
}

void check_error(const caf::error& err, const std::string& code,
                 const std::string& detail) {
  INFO("error: " << describe(err));
  REQUIRE(err);
  CHECK(err.category() == error_category());
  CHECK_THAT(describe(err), Catch::StartsWith(code + ": "));
  if (!detail.empty())
    CHECK_THAT(describe(err), Catch::Contains(detail));
}

/// Ends the actors a test spawned (and waits for them) before the harness
/// destroys the actor system, even when an assertion ends the test early.
struct spawned_actors {
  caf::actor_system& sys;
  std::vector<caf::actor> actors;

  ~spawned_actors() {
    caf::scoped_actor self{sys};
    for (auto& a : actors) {
      self->send_exit(a, caf::exit_reason::user_shutdown);
      self->wait_for(a);
    }
  }
};

} // namespace

TEST_CASE("a BlockManager answers malformed messages with errors and keeps working",
          "[integration]") {
  local_harness h{2};
  auto lines = h.ssc().queue_stream<std::string>({{"a b a", "c"}, {"b"}});
  auto sink = h.collect(apps::word_counts(lines));
  h.start();
  auto& sys = h.ssc().system();
  auto store = std::make_shared<block_store>();
  spawned_actors guard{sys, {}};
  auto bm = sys.spawn(block_manager, std::string{"probe-node"}, store);
  guard.actors.push_back(bm);
  caf::scoped_actor self{sys};
  auto good_block = make_block<std::string>({"x", "y z", ""});

  SECTION("malformed PutBlock headers") {
    for (auto& [what, header] : bad_headers(put_header("put-id", 3))) {
      INFO("PutBlock header: " << what);
      auto a = ask<msg<wire::PutBlockAck>>(self, bm,
                                           msg<wire::PutBlock>{header, good_block, {}});
      CHECK(!a.reply);
      check_error(a.error, "malformed_message", "sluice::PutBlock");
    }
    CHECK(store->size() == 0);
  }

  SECTION("malformed GetBlock headers") {
    store->put("get-id", stored_block{good_block, 3});
    for (auto& [what, header] : bad_headers(get_header("get-id"))) {
      INFO("GetBlock header: " << what);
      auto a = ask<msg<wire::BlockData>>(self, bm, msg<wire::GetBlock>{header, {}, {}});
      CHECK(!a.reply);
      check_error(a.error, "malformed_message", "sluice::GetBlock");
    }
  }

  SECTION("PutBlock payloads that are not valid blocks") {
    std::vector<std::pair<std::string, buffer>> payloads{
      {"empty", buffer{}},
      {"garbage", bytes_of(std::vector<uint8_t>(48, 0xab))},
      {"not a whole number of words", with_tail(good_block, 5)},
      {"truncated", prefix_of(good_block, good_block.size() - 8)},
      {"another message", put_header("not-a-block", 1)},
    };
    for (auto& [what, payload] : payloads) {
      INFO("payload: " << what);
      auto a = ask<msg<wire::PutBlockAck>>(
        self, bm, msg<wire::PutBlock>{put_header("bad-" + what, 3), payload, {}});
      CHECK(!a.reply);
      check_error(a.error, "corrupt_data", "bad-" + what);
      CHECK(!store->contains("bad-" + what));
    }
    CHECK(store->size() == 0);
  }

  SECTION("a PutBlock whose record count lies") {
    for (uint64_t claimed : {0u, 2u, 4u, 1000000u}) {
      INFO("claimed records: " << claimed);
      auto a = ask<msg<wire::PutBlockAck>>(
        self, bm, msg<wire::PutBlock>{put_header("liar", claimed), good_block, {}});
      CHECK(!a.reply);
      check_error(a.error, "corrupt_data",
                  "holds 3 records, its header says " + std::to_string(claimed));
    }
    CHECK(!store->contains("liar"));
    // A GetBlock for the refused id finds nothing.
    auto a = ask<msg<wire::BlockData>>(self, bm, msg<wire::GetBlock>{get_header("liar"), {}, {}});
    REQUIRE(a.reply);
    CHECK(a.reply->payload.empty());
    bool found = true;
    CHECK(!read_msg(*a.reply, [&](wire::BlockData::Reader r) { found = r.getFound(); }));
    CHECK(!found);
  }

  SECTION("malformed DropBlocks are ignored") {
    store->put("kept", stored_block{good_block, 3});
    for (auto& [what, header] : bad_headers(put_header("kept", 3)))
      caf::anon_send(bm, msg<wire::DropBlocks>{header, {}, {}});
    // Messages from one sender arrive in order: once this answer is here,
    // every DropBlocks before it was handled.
    auto a = ask<msg<wire::BlockData>>(self, bm, msg<wire::GetBlock>{get_header("kept"), {}, {}});
    REQUIRE(a.reply);
    CHECK(store->contains("kept"));
  }

  // Whatever came before, the actor still stores and serves blocks.
  auto put = ask<msg<wire::PutBlockAck>>(
    self, bm, msg<wire::PutBlock>{put_header("good", 3), good_block, {}});
  INFO(describe(put.error));
  REQUIRE(put.reply);
  std::string ack_id;
  std::string ack_node;
  REQUIRE(!read_msg(*put.reply, [&](wire::PutBlockAck::Reader r) {
    ack_id = r.getId();
    ack_node = r.getNode();
  }));
  CHECK(ack_id == "good");
  CHECK(ack_node == "probe-node");
  auto get = ask<msg<wire::BlockData>>(self, bm, msg<wire::GetBlock>{get_header("good"), {}, {}});
  REQUIRE(get.reply);
  bool found = false;
  std::string data_id;
  REQUIRE(!read_msg(*get.reply, [&](wire::BlockData::Reader r) {
    found = r.getFound();
    data_id = r.getId();
  }));
  CHECK(found);
  CHECK(data_id == "good");
  CHECK(read_block<std::string>(get.reply->payload) == std::vector<std::string>{"x", "y z", ""});
  // A valid DropBlocks still works too.
  {
    capnp::MallocMessageBuilder b;
    b.initRoot<wire::DropBlocks>().initIds(1).set(0, "good");
    caf::anon_send(bm, make_msg<wire::DropBlocks>(b));
  }
  auto gone = ask<msg<wire::BlockData>>(self, bm, msg<wire::GetBlock>{get_header("good"), {}, {}});
  REQUIRE(gone.reply);
  found = true;
  REQUIRE(!read_msg(*gone.reply, [&](wire::BlockData::Reader r) { found = r.getFound(); }));
  CHECK(!found);
  // And the cluster in the same actor system runs a whole batch.
  auto info = h.next_batch();
  CHECK(info.failed_jobs == 0);
  CHECK(sink->sorted(1000) == counts{{"a", 2}, {"b", 1}, {"c", 1}});
  h.next_batch();
  CHECK(sink->sorted(2000) == counts{{"b", 1}});
}

TEST_CASE("a TaskExecutor answers malformed tasks with errors and keeps running tasks",
          "[integration]") {
  local_harness h{2};
  auto lines = h.ssc().queue_stream<std::string>({{"to be or not to be"}, {"be"}});
  auto sink = h.collect(apps::word_counts(lines));
  h.start();
  auto& g = h.ssc().graph();
  // The word count's output and the shuffle (reduce_by_key) it reads.
  REQUIRE(g.outputs().size() == 1);
  auto* output = g.outputs().front();
  REQUIRE(output->parents().size() == 1);
  auto* shuffle = output->parents().front();
  REQUIRE(shuffle->kind() == node_kind::shuffle);
  auto& sys = h.ssc().system();
  auto store = std::make_shared<block_store>();
  spawned_actors guard{sys, {}};
  auto bm = sys.spawn(block_manager, std::string{"probe-node"}, store);
  guard.actors.push_back(bm);
  auto exec = sys.spawn(task_executor, std::string{"probe-node"}, &g, store);
  guard.actors.push_back(exec);
  caf::scoped_actor self{sys};

  // A task that runs the output over one reduce partition whose only map
  // output is a block in this node's store.
  auto output_task = [&](const std::string& block_id) {
    task_spec spec;
    spec.batch_time = 77000;
    spec.job = 7;
    spec.stage = 1;
    spec.partition = 0;
    spec.attempt = 1;
    spec.final_node = output->index();
    spec.action = task_action::output;
    spec.target = output->index();
    for (auto& n : g.nodes())
      spec.counts.set(n->index(), 1);
    leaf_read r;
    r.node = shuffle->index();
    r.partition = 0;
    r.source = leaf_read::kind::shuffle;
    block_ref ref;
    ref.id = block_id;
    ref.records = 2;
    ref.locations.push_back("probe-node");
    r.shuffle.push_back(ref);
    spec.reads.push_back(r);
    return spec;
  };
  struct task_outcome {
    bool ok = false;
    std::string error;
    buffer payload;
  };
  auto run = [&](const task_spec& spec) {
    auto a = ask<msg<wire::TaskResult>>(self, exec,
                                        msg<wire::LaunchTask>{launch_header(spec), {}, {}});
    INFO(describe(a.error));
    REQUIRE(a.reply);
    task_outcome result;
    REQUIRE(!read_msg(*a.reply, [&](wire::TaskResult::Reader r) {
      result.ok = r.getOk();
      result.error = r.getError();
    }));
    result.payload = a.reply->payload;
    return result;
  };

  for (auto& [what, header] : bad_headers(launch_header(output_task("shuffle-block")))) {
    INFO("LaunchTask header: " << what);
    auto a = ask<msg<wire::TaskResult>>(self, exec, msg<wire::LaunchTask>{header, {}, {}});
    CHECK(!a.reply);
    check_error(a.error, "malformed_message", "sluice::LaunchTask");
  }

  // The map output the tasks below read, stored through the BlockManager.
  using wc = std::pair<std::string, int64_t>;
  auto map_output = make_block<wc>({{"x", 2}, {"y", 5}});
  auto put = ask<msg<wire::PutBlockAck>>(
    self, bm, msg<wire::PutBlock>{put_header("shuffle-block", 2), map_output, {}});
  INFO(describe(put.error));
  REQUIRE(put.reply);

  // Well-formed tasks that cannot run fail as tasks, in a TaskResult.
  {
    auto spec = output_task("shuffle-block");
    spec.target = 9999;
    auto r = run(spec);
    CHECK(!r.ok);
    CHECK_THAT(r.error, Catch::Contains("unknown node 9999"));
  }
  {
    auto r = run(output_task("nowhere"));
    CHECK(!r.ok);
    CHECK_THAT(r.error, Catch::Contains("cannot read block nowhere"));
  }
  {
    auto spec = output_task("elsewhere");
    spec.reads[0].shuffle[0].locations = {"ghost"};
    spec.peers.emplace_back("ghost", 5); // no such capability
    auto r = run(spec);
    CHECK(!r.ok);
    CHECK_THAT(r.error, Catch::Contains("ghost: no BlockManager known"));
  }
  {
    // A map output block whose records are not (word, count) pairs.
    store->put("wrong-type", stored_block{make_block<std::string>({"x", "y"}), 2});
    auto r = run(output_task("wrong-type"));
    CHECK(!r.ok);
    CHECK_THAT(r.error, Catch::Contains("corrupt record"));
  }

  // A valid task still runs.
  auto r = run(output_task("shuffle-block"));
  INFO(r.error);
  REQUIRE(r.ok);
  REQUIRE(!r.payload.empty());
  auto got = read_block<wc>(r.payload);
  std::sort(got.begin(), got.end());
  CHECK(got == std::vector<wc>{{"x", 2}, {"y", 5}});

  // And the cluster in the same actor system runs whole batches.
  auto info = h.next_batch();
  CHECK(info.failed_jobs == 0);
  CHECK(sink->sorted(1000) == counts{{"be", 2}, {"not", 1}, {"or", 1}, {"to", 2}});
  h.next_batch();
  CHECK(sink->sorted(2000) == counts{{"be", 1}});
}
