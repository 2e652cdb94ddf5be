#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/response_promise.hpp>
#include <caf/stateful_actor.hpp>

#include "runtime/block_generator.hpp"
#include "runtime/cluster/pending_blocks.hpp"
#include "runtime/exec/task_context.hpp"
#include "runtime/sources/source.hpp"

namespace sluice {

/// State of a Receiver: runs one source on a worker.
///
/// The source runs on a thread of its own and pushes records into a
/// block_generator; every block interval the receiver cuts a block and
/// writes it to its node's BlockManager and, with the WAL on, to the
/// receiver WAL in parallel, and at a `_2` storage level also to the
/// BlockManager of another node (hot standby; the tracker names the peers
/// with ReceiverPeers, and no block is reported before it did). Only once
/// every copy is written is the block reported to the ReceiverTracker with
/// AddBlock, listing its local and replica locations. A replica put that
/// fails moves to the next peer; with no peer left the block keeps one copy
/// and the log says replication degraded. A block the WAL failed to take (a full
/// disk) is kept and retried every block interval, and never reported before
/// it is written. AddBlock is a request: a block stays pending until the
/// tracker acknowledges it, and pending blocks are re-sent when a restarted
/// driver's tracker adopts this receiver (set_tracker_atom), so a driver
/// crash loses nothing that reached a block. StopReceiver stops the source,
/// cuts and reports what was buffered, and answers ReceiverStopped once the
/// tracker acknowledged every block (its node hands a receiver over this
/// way, after set_tracker_atom names the tracker to report to). A
/// source that throws ends the receiver the same way, but with an error
/// (errc::source_failed) after its last block was acknowledged, so the
/// tracker restarts it; a source that returns by itself ends it normally.
/// Lifetime: spawned by its worker node on StartReceiver; outlives the
/// driver; the source thread is joined before the state dies.
struct receiver_state {
  static const char* name;

  ~receiver_state();

  uint32_t stream = 0;
  std::string node;
  uint64_t incarnation = 0;  ///< the node's receiver start count: unique ids
  caf::actor tracker;
  caf::actor block_manager;
  caf::actor wal;            ///< the detached WAL appender, if the WAL is on
  std::string wal_dir;
  bool use_disk = false;
  /// What was cut and not acknowledged, and when each block is reported.
  std::unique_ptr<pending_blocks> pending;
  std::map<std::string, caf::actor> peers; ///< BlockManagers by node
  uint64_t ack_failures = 0; ///< AddBlock requests failed since the last ack
  std::chrono::milliseconds block_interval{200};
  std::unique_ptr<block_generator> generator;
  std::unique_ptr<stop_signal> stop;
  std::unique_ptr<source_reporter> reporter;
  source_ptr src;
  std::thread thread;
  uint64_t next_seq = 0;
  bool stopping = false;
  caf::response_promise stopped;
  std::string source_failure; ///< the source threw: end with this error

  void join_source();
};

/// How a receiver stores what it receives.
struct receiver_options {
  std::chrono::milliseconds block_interval{200};
  uint64_t max_rate = 0;
  std::string wal_dir;    ///< empty: no WAL
  std::chrono::milliseconds wal_rolling{60000};
  uint64_t incarnation = 0;
  bool use_disk = false;  ///< sluice.storage-level names a disk level
};

caf::behavior receiver(caf::stateful_actor<receiver_state>* self,
                       uint32_t stream, std::string node, caf::actor tracker,
                       caf::actor block_manager, source_ptr src,
                       receiver_options opts);

} // namespace sluice
