// The ReceiverTracker actor alone, among stand-ins for a worker's actors:
// a batch released while the worker's BlockManager restarts is dropped by
// the BlockManager that follows it, not sent to the dead one and lost.

#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/after.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "actors/receiver_tracker.hpp"
#include "messages/schemas.hpp"
#include "runtime/streaming_context.hpp"
#include "tests/support/helpers.hpp"

using namespace sluice;
using namespace std::chrono_literals;

namespace {

/// A BlockManager or TaskExecutor that is never asked anything. (Not
/// one with the `drop` default handler: it answers what it drops with an
/// error, which ends the tracker.)
caf::behavior idle() {
  return {[](const msg<wire::DropBlocks>&) {}};
}

/// A receiver that takes its peers and does nothing.
caf::behavior fake_receiver() {
  return {[](const msg<wire::ReceiverPeers>&) {}};
}

/// A worker node that starts every receiver it is asked to.
caf::behavior fake_node(caf::event_based_actor* self) {
  return {
    [self](const msg<wire::StartReceiver>&) {
      capnp::MallocMessageBuilder b;
      b.initRoot<wire::ReceiverEvent>().setNode("w1");
      return make_msg<wire::ReceiverEvent>(b, {}, {self->spawn(fake_receiver)});
    },
  };
}

/// The block ids a BlockManager was told to drop.
struct dropped_ids {
  std::mutex mtx;
  std::vector<std::string> ids;

  std::vector<std::string> get() {
    std::lock_guard<std::mutex> guard{mtx};
    return ids;
  }
};

/// A BlockManager that notes every id it is told to drop.
caf::behavior noting_block_manager(caf::event_based_actor*,
                                   std::shared_ptr<dropped_ids> out) {
  return {
    [out](const msg<wire::DropBlocks>& m) {
      std::lock_guard<std::mutex> guard{out->mtx};
      auto err = read_msg(m, [&](wire::DropBlocks::Reader r) {
        for (auto id : r.getIds())
          out->ids.emplace_back(id);
      });
      if (err)
        out->ids.push_back(describe(err));
    },
  };
}

msg<wire::WorkerChange> joined(const std::string& node, bool refreshed,
                               std::vector<caf::actor> caps) {
  capnp::MallocMessageBuilder b;
  auto change = b.initRoot<wire::WorkerChange>();
  change.setNode(node);
  change.setJoined(true);
  change.setSlots(1);
  change.setRefreshed(refreshed);
  return make_msg<wire::WorkerChange>(b, {}, std::move(caps));
}

} // namespace

TEST_CASE("a batch released while a BlockManager restarts is dropped by the next "
          "BlockManager of its node",
          "[integration][tracker]") {
  config cfg;
  caf::actor_system sys{cfg};
  streaming_context ssc{sys, cfg.sluice_settings};
  // Never started: only its graph (one receiver stream) is used.
  ssc.socket_text_stream("127.0.0.1", 9).print();
  uint32_t stream = 0;
  for (auto& n : ssc.graph().nodes())
    if (n->kind() == node_kind::receiver_input)
      stream = n->index();
  caf::scoped_actor self{sys};
  auto tracker = sys.spawn(receiver_tracker, &ssc.graph(), cfg.sluice_settings,
                           std::make_shared<listener_bus>(),
                           std::make_shared<manual_clock>(0), caf::actor{},
                           std::shared_ptr<driver_log>{},
                           std::shared_ptr<const recovery_plan>{});
  auto node = sys.spawn(fake_node);
  auto executor = sys.spawn(idle);
  auto first_bm = sys.spawn(idle);
  // Monitored before the tracker monitors it: CAF 0.17 sends down messages
  // latest monitor first, so the tracker has its own by the time ours comes.
  self->monitor(first_bm);
  self->send(tracker, joined("w1", false, {first_bm, executor, node}));

  block_ref ref;
  ref.id = "in/" + std::to_string(stream) + "/w1/0/1";
  ref.records = 2;
  ref.bytes = 16;
  ref.locations = {"w1"};
  {
    capnp::MallocMessageBuilder b;
    auto add = b.initRoot<wire::AddBlock>();
    add.setStream(stream);
    encode(ref, add.initBlock());
    self->request(tracker, 10s, make_msg<wire::AddBlock>(b))
      .receive([](const msg<wire::AddBlockAck>&) {},
               [](caf::error& err) { FAIL("AddBlock: " << describe(err)); });
  }
  {
    capnp::MallocMessageBuilder b;
    b.initRoot<wire::AllocateBlocks>().setBatchTime(1000);
    size_t blocks = 0;
    self->request(tracker, 10s, make_msg<wire::AllocateBlocks>(b))
      .receive(
        [&](const msg<wire::BlockAllocation>& m) {
          REQUIRE(!read_msg(m, [&](wire::BlockAllocation::Reader r) {
            for (auto s : r.getStreams())
              blocks += s.getBlocks().size();
          }));
        },
        [](caf::error& err) { FAIL("AllocateBlocks: " << describe(err)); });
    REQUIRE(blocks == 1);
  }

  // The BlockManager crashes; the batch is released before the node
  // announces the next one.
  caf::anon_send_exit(first_bm, caf::exit_reason::kill);
  bool down = false;
  self->receive([&](caf::down_msg&) { down = true; },
                caf::after(10s) >> [] {});
  REQUIRE(down);
  {
    capnp::MallocMessageBuilder b;
    b.initRoot<wire::ReleaseBatch>().setBatchTime(1000);
    self->send(tracker, make_msg<wire::ReleaseBatch>(b));
  }
  auto dropped = std::make_shared<dropped_ids>();
  auto next_bm = sys.spawn(noting_block_manager, dropped);
  self->send(tracker, joined("w1", true, {next_bm, executor, node}));
  CHECK(test::wait_until([&] { return !dropped->get().empty(); }, 10s));
  CHECK(dropped->get() == std::vector<std::string>{ref.id});

  for (auto& a : {tracker, node, executor, next_bm}) {
    self->send_exit(a, caf::exit_reason::user_shutdown);
    self->wait_for(a);
  }
}
