#include "actors/receiver.hpp"

#include <caf/send.hpp>

#include "actors/atoms.hpp"
#include "messages/schemas.hpp"
#include "runtime/exec/task_spec.hpp"
#include "runtime/log.hpp"

namespace sluice {

const char* receiver_state::name = "receiver";

namespace {

using receiver_ptr = caf::stateful_actor<receiver_state>*;

/// Forwards a source's reports to the tracker from the source thread
/// (anon_send is thread-safe) and logs them.
class tracker_reporter : public source_reporter {
public:
  tracker_reporter(caf::actor tracker, uint32_t stream, std::string node,
                   std::string what)
    : tracker_(std::move(tracker)),
      stream_(stream),
      node_(std::move(node)),
      what_(std::move(what)) {
  }

  void started(const std::string& text) override {
    SLUICE_INFO("receiver", "stream " << stream_ << " on " << node_ << ": "
                                      << text);
    send(wire::ReceiverEvent::Kind::STARTED, text);
  }

  void error(const std::string& text) override {
    SLUICE_WARN("receiver", "stream " << stream_ << " on " << node_ << " ("
                                      << what_ << "): " << text);
    send(wire::ReceiverEvent::Kind::ERROR, text);
  }

private:
  void send(wire::ReceiverEvent::Kind kind, const std::string& text) {
    capnp::MallocMessageBuilder b;
    auto ev = b.initRoot<wire::ReceiverEvent>();
    ev.setStream(stream_);
    ev.setNode(node_);
    ev.setKind(kind);
    ev.setMessage(text);
    caf::anon_send(tracker_, make_msg<wire::ReceiverEvent>(b));
  }

  caf::actor tracker_;
  uint32_t stream_;
  std::string node_;
  std::string what_;
};

void maybe_finish_stop(receiver_ptr self) {
  auto& st = self->state;
  if (!st.stopping || st.pending_puts > 0)
    return;
  capnp::MallocMessageBuilder b;
  auto r = b.initRoot<wire::ReceiverStopped>();
  r.setStream(st.stream);
  r.setBlocks(st.blocks);
  r.setRecords(st.records);
  SLUICE_INFO("receiver", "stream " << st.stream << " on " << st.node
                                    << " stopped after " << st.records
                                    << " records in " << st.blocks << " blocks");
  st.stopped.deliver(make_msg<wire::ReceiverStopped>(b));
  self->quit();
}

/// Cuts what the source buffered into a block, stores it, then reports it.
void cut_and_store(receiver_ptr self) {
  auto& st = self->state;
  auto cut = st.generator->cut();
  if (!cut)
    return;
  auto id = "in/" + std::to_string(st.stream) + "/" + st.node + "/"
            + std::to_string(st.next_seq++);
  block_ref ref;
  ref.id = id;
  ref.records = cut->records;
  ref.bytes = cut->bytes.size();
  capnp::MallocMessageBuilder b;
  auto put = b.initRoot<wire::PutBlock>();
  put.setId(id);
  put.setRecords(cut->records);
  ++st.pending_puts;
  self->request(st.block_manager, std::chrono::seconds{30},
                make_msg<wire::PutBlock>(b, std::move(cut->bytes)))
    .then(
      [self, ref](const msg<wire::PutBlockAck>& ack) mutable {
        auto& st = self->state;
        --st.pending_puts;
        std::string where;
        if (auto err = read_msg(ack, [&](wire::PutBlockAck::Reader r) {
              where = r.getNode();
            })) {
          SLUICE_ERROR("receiver", "bad PutBlockAck: " << describe(err));
          where = st.node;
        }
        ref.locations.push_back(where);
        ++st.blocks;
        st.records += ref.records;
        capnp::MallocMessageBuilder out;
        auto add = out.initRoot<wire::AddBlock>();
        add.setStream(st.stream);
        encode(ref, add.initBlock());
        self->send(st.tracker, make_msg<wire::AddBlock>(out));
        maybe_finish_stop(self);
      },
      [self, ref](caf::error& err) {
        // The block was not stored, so it is not reported: the tracker never
        // learns of data that is not held anywhere.
        auto& st = self->state;
        --st.pending_puts;
        SLUICE_ERROR("receiver", "stream " << st.stream << ": cannot store block "
                                           << ref.id << " (" << ref.records
                                           << " records): " << describe(err));
        maybe_finish_stop(self);
      });
}

} // namespace

receiver_state::~receiver_state() {
  join_source();
}

void receiver_state::join_source() {
  if (stop)
    stop->request_stop();
  if (generator)
    generator->interrupt();
  if (thread.joinable())
    thread.join();
}

caf::behavior receiver(receiver_ptr self, uint32_t stream, std::string node,
                       caf::actor tracker, caf::actor block_manager,
                       source_ptr src, std::chrono::milliseconds block_interval,
                       uint64_t max_rate) {
  auto& st = self->state;
  st.stream = stream;
  st.node = std::move(node);
  st.tracker = std::move(tracker);
  st.block_manager = std::move(block_manager);
  st.block_interval = block_interval;
  st.generator = std::make_unique<block_generator>(max_rate);
  st.stop = std::make_unique<stop_signal>();
  st.src = std::move(src);
  st.reporter = std::make_unique<tracker_reporter>(st.tracker, stream, st.node,
                                                   st.src->describe());
  st.thread = std::thread{[src = st.src.get(), gen = st.generator.get(),
                           stop = st.stop.get(), rep = st.reporter.get()] {
    src->run(*gen, *stop, *rep);
  }};
  self->delayed_send(self, block_interval, block_tick_atom::value);
  return {
    [self](block_tick_atom) {
      if (self->state.stopping)
        return;
      cut_and_store(self);
      self->delayed_send(self, self->state.block_interval,
                         block_tick_atom::value);
    },
    [self](const msg<wire::StopReceiver>&)
      -> caf::result<msg<wire::ReceiverStopped>> {
      auto& st = self->state;
      if (st.stopping)
        return make_error(errc::refused, "receiver is already stopping");
      st.stopping = true;
      st.stopped = self->make_response_promise();
      // Join first: after this no record can arrive, so the last cut takes
      // everything the source ever pushed.
      st.join_source();
      cut_and_store(self);
      maybe_finish_stop(self);
      return caf::delegated<msg<wire::ReceiverStopped>>{};
    },
  };
}

} // namespace sluice
