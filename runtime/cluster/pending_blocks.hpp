#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "runtime/buffer.hpp"
#include "runtime/exec/task_context.hpp"

namespace sluice {

/// What a receiver must do after an event of its pending_blocks.
struct pending_effects {
  /// A second copy to put: `attempt` identifies the put in its answer.
  struct replica_put {
    std::string id;
    std::string peer;
    uint32_t attempt = 0;
  };

  std::vector<std::string> local_puts;  ///< ids to put on the local node
  std::vector<replica_put> replica_puts;
  std::vector<std::string> wal_appends; ///< ids to append to the WAL now
  std::vector<block_ref> reports;       ///< AddBlock to send (locations set)
  std::vector<std::string> lost;        ///< stored nowhere: never reported
  /// Replication fell to one copy ("" when it did not); set once per streak.
  std::string degraded;
  bool replicated_again = false; ///< the streak of one-copy blocks ended
  bool wal_recovered = false;    ///< the WAL took a block after failing
};

/// The blocks a receiver cut that the tracker has not acknowledged yet, and
/// the rules that decide when each is reported (Receiver's state machine).
///
/// A block is written to up to three places at once: the local
/// BlockManager, the receiver WAL (when on) and, at replication 2, the
/// BlockManager of a peer. It is reported (AddBlock) once every write has
/// ended: the local put (ok or failed), the WAL append (only an ok counts:
/// a block the WAL refused is held and the oldest one retried), and the
/// second copy (placed, or given up after every peer failed, which starts
/// a "degraded" streak). A block no copy holds is lost, never reported. A
/// reported block stays (with its bytes) until acknowledged, and is
/// reported again to a new tracker. Before the tracker said what the replication is (set_peers) no
/// block is reported; a stop or a hand-over settles it at one copy.
///
/// Lifetime: owned by one Receiver actor, created with it. Concurrency:
/// none; the actor calls it from its handlers. No clock, no I/O: the
/// actor performs the effects and feeds their outcomes back.
class pending_blocks {
public:
  explicit pending_blocks(bool wal_on) : wal_on_(wal_on) {
  }

  // -- events -------------------------------------------------------------

  /// A block was cut: the effects put it locally, append it to the WAL
  /// (when on and not failing) and say where its second copy goes.
  pending_effects cut(block_ref ref, buffer bytes);

  /// The local put ended; `node` is where it landed, empty when it failed.
  pending_effects stored(const std::string& id, const std::string& node);

  /// The WAL holds block `id` at `where`.
  pending_effects wal_appended(const std::string& id, const wal_ref& where);

  /// The WAL refused block `id`; returns true when this starts a streak of
  /// failures (to be reported once). The block is held for retry_wal().
  bool wal_failed(const std::string& id);

  /// The oldest block the WAL does not hold, unless an append is under way.
  pending_effects retry_wal();

  /// The second copy of `id` landed on `node` (for put `attempt`).
  pending_effects replica_stored(const std::string& id, uint32_t attempt,
                                 const std::string& node);

  /// Put `attempt` of `id`'s second copy failed: the next peer is tried.
  /// Returns false when the answer was stale (ignored).
  bool replica_failed(const std::string& id, uint32_t attempt,
                      pending_effects& out);

  /// The tracker named the replication and the peers (live workers other
  /// than this receiver's). Blocks waiting for them, or whose put went to a
  /// peer no longer listed, are replicated now.
  pending_effects set_peers(uint8_t replication, std::vector<std::string> peers);

  /// A new tracker (a restarted driver, or a hand-over): every block
  /// reported before is reported again.
  std::vector<block_ref> reported() const;

  /// The tracker acknowledged `id`.
  void acked(const std::string& id);

  /// The receiver stops: blocks still waiting for the replication keep one
  /// copy rather than never being reported.
  pending_effects stop();

  /// The node hands the receiver over. When it also drops every block
  /// stored under `retired_node` (its old id; empty: it keeps its store),
  /// blocks whose local copy is there (or lands there later) are put again,
  /// into the node's next BlockManager, and reported again with that
  /// location. The peers it knows may have died
  /// with its connections, so second copies under way are given up; copies
  /// already placed on peers stay.
  pending_effects hand_over(const std::string& retired_node);

  // -- queries ------------------------------------------------------------

  bool empty() const noexcept {
    return blocks_.empty();
  }

  size_t size() const noexcept {
    return blocks_.size();
  }

  /// The reference of `id` as last reported (null when it is not pending
  /// or not reported now).
  const block_ref* reported_ref(const std::string& id) const;

  /// The records of block `id` (0 when it is not pending).
  uint64_t records(const std::string& id) const;

  /// The bytes of `id` until the tracker acknowledged it (a hand-over may
  /// have to put it again). Shared with the local store's copy, so keeping
  /// them costs no memory while the block is stored.
  const buffer* bytes(const std::string& id) const;

  /// Blocks and records reported so far (each block once).
  uint64_t blocks_reported() const noexcept {
    return blocks_reported_;
  }

  uint64_t records_reported() const noexcept {
    return records_reported_;
  }

private:
  struct entry {
    uint64_t seq = 0; ///< cut order
    block_ref ref;
    buffer bytes;
    bool stored = false;         ///< the local put ended
    std::string local_node;      ///< where it landed; empty: failed
    bool logged = false;         ///< the WAL holds it (or the WAL is off)
    bool wal_pending = false;    ///< an append is under way
    bool replicated = false;     ///< second copy placed or given up
    std::string replica_node;    ///< empty: none
    std::string replica_target;  ///< peer of the put under way
    uint32_t replica_attempt = 0; ///< of the put under way; 0: none
    size_t replica_tries = 0;    ///< peers tried for this block
    bool reported = false;
    bool counted = false; ///< in blocks_reported_ (a re-report is not)
  };

  void replicate(const std::string& id, pending_effects& out);
  void maybe_report(const std::string& id, pending_effects& out);
  void append(entry& e, const std::string& id, pending_effects& out);

  bool wal_on_;
  bool wal_failing_ = false;
  uint8_t replication_ = 0; ///< 0 until set_peers (or a stop)
  std::vector<std::string> peers_;
  size_t next_peer_ = 0; ///< round robin over peers_
  uint32_t attempts_ = 0;
  bool degraded_ = false;
  std::string retired_node_; ///< after a hand-over: the old node id
  std::map<std::string, entry> blocks_; ///< by id
  uint64_t next_seq_ = 0;
  uint64_t blocks_reported_ = 0;
  uint64_t records_reported_ = 0;
};

} // namespace sluice
