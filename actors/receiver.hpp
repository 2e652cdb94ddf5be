#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/response_promise.hpp>
#include <caf/stateful_actor.hpp>

#include "runtime/block_generator.hpp"
#include "runtime/sources/source.hpp"

namespace sluice {

/// State of a Receiver: runs one source on a worker.
///
/// The source runs on a thread of its own and pushes records into a
/// block_generator; every block interval the receiver cuts a block, stores it
/// in its node's BlockManager and, once stored, reports it to the
/// ReceiverTracker with AddBlock. StopReceiver stops the source, cuts and
/// reports what was buffered, then answers ReceiverStopped: nothing received
/// is dropped by a graceful stop.
/// Lifetime: spawned by its worker node on StartReceiver; the source thread
/// is joined before the state dies.
struct receiver_state {
  static const char* name;

  ~receiver_state();

  uint32_t stream = 0;
  std::string node;
  caf::actor tracker;
  caf::actor block_manager;
  std::chrono::milliseconds block_interval{200};
  std::unique_ptr<block_generator> generator;
  std::unique_ptr<stop_signal> stop;
  std::unique_ptr<source_reporter> reporter;
  source_ptr src;
  std::thread thread;
  uint64_t next_seq = 0;
  uint64_t blocks = 0;
  uint64_t records = 0;
  size_t pending_puts = 0;
  bool stopping = false;
  caf::response_promise stopped;

  void join_source();
};

caf::behavior receiver(caf::stateful_actor<receiver_state>* self,
                       uint32_t stream, std::string node, caf::actor tracker,
                       caf::actor block_manager, source_ptr src,
                       std::chrono::milliseconds block_interval,
                       uint64_t max_rate);

} // namespace sluice
