#include "runtime/cluster/pending_blocks.hpp"

#include <algorithm>
#include <utility>

namespace sluice {

pending_effects pending_blocks::cut(block_ref ref, buffer bytes) {
  pending_effects out;
  auto id = ref.id;
  entry e;
  e.seq = next_seq_++;
  e.ref = std::move(ref);
  e.bytes = std::move(bytes);
  e.logged = !wal_on_;
  auto& stored = blocks_.emplace(id, std::move(e)).first->second;
  out.local_puts.push_back(id);
  // While the WAL fails, one held block probes it at a time (retry_wal):
  // a full disk is not hammered with every block.
  if (wal_on_ && !wal_failing_)
    append(stored, id, out);
  replicate(id, out);
  return out;
}

pending_effects pending_blocks::stored(const std::string& id,
                                       const std::string& node) {
  pending_effects out;
  auto i = blocks_.find(id);
  if (i == blocks_.end())
    return out;
  if (!retired_node_.empty() && node == retired_node_) {
    // Landed in the old incarnation's store, which the node drops.
    out.local_puts.push_back(id);
    return out;
  }
  i->second.stored = true;
  i->second.local_node = node;
  maybe_report(id, out);
  return out;
}

pending_effects pending_blocks::wal_appended(const std::string& id,
                                             const wal_ref& where) {
  pending_effects out;
  out.wal_recovered = std::exchange(wal_failing_, false);
  if (auto i = blocks_.find(id); i != blocks_.end()) {
    i->second.ref.wal = where;
    i->second.logged = true;
    i->second.wal_pending = false;
    maybe_report(id, out);
  }
  // Blocks held back while the WAL failed follow one after the other.
  auto more = retry_wal();
  out.wal_appends.insert(out.wal_appends.end(), more.wal_appends.begin(),
                         more.wal_appends.end());
  return out;
}

bool pending_blocks::wal_failed(const std::string& id) {
  if (auto i = blocks_.find(id); i != blocks_.end())
    i->second.wal_pending = false;
  // Not reported, not dropped: a full disk delays blocks instead of losing
  // them or reporting blocks the WAL does not hold.
  return !std::exchange(wal_failing_, true);
}

pending_effects pending_blocks::retry_wal() {
  pending_effects out;
  if (!wal_on_)
    return out;
  entry* oldest = nullptr;
  const std::string* oldest_id = nullptr;
  for (auto& [id, e] : blocks_) {
    if (e.wal_pending)
      return out;
    if (!e.logged && (oldest == nullptr || e.seq < oldest->seq)) {
      oldest = &e;
      oldest_id = &id;
    }
  }
  if (oldest != nullptr)
    append(*oldest, *oldest_id, out);
  return out;
}

pending_effects pending_blocks::replica_stored(const std::string& id,
                                               uint32_t attempt,
                                               const std::string& node) {
  pending_effects out;
  auto i = blocks_.find(id);
  if (i == blocks_.end() || i->second.replica_attempt != attempt)
    return out; // given up meanwhile (the peer left, or a hand-over)
  auto& e = i->second;
  e.replica_attempt = 0;
  e.replica_node = node.empty() ? e.replica_target : node;
  e.replicated = true;
  if (std::exchange(degraded_, false))
    out.replicated_again = true;
  maybe_report(id, out);
  return out;
}

bool pending_blocks::replica_failed(const std::string& id, uint32_t attempt,
                                    pending_effects& out) {
  auto i = blocks_.find(id);
  if (i == blocks_.end() || i->second.replica_attempt != attempt)
    return false;
  i->second.replica_attempt = 0;
  replicate(id, out);
  return true;
}

pending_effects pending_blocks::set_peers(uint8_t replication,
                                          std::vector<std::string> peers) {
  pending_effects out;
  replication_ = std::max<uint8_t>(1, replication);
  peers_ = std::move(peers);
  std::vector<std::string> ids;
  for (auto& [id, e] : blocks_) {
    if (e.replicated)
      continue;
    if (e.replica_attempt != 0) {
      if (std::find(peers_.begin(), peers_.end(), e.replica_target) != peers_.end())
        continue;
      e.replica_attempt = 0; // its answer, if any, is ignored
    }
    e.replica_tries = 0;
    ids.push_back(id);
  }
  for (auto& id : ids) // replicate may report, or erase a block held nowhere
    replicate(id, out);
  return out;
}

std::vector<block_ref> pending_blocks::reported() const {
  std::vector<block_ref> result;
  for (auto& [id, e] : blocks_)
    if (e.reported)
      result.push_back(e.ref);
  return result;
}

void pending_blocks::acked(const std::string& id) {
  blocks_.erase(id);
}

pending_effects pending_blocks::stop() {
  pending_effects out;
  if (replication_ != 0)
    return out;
  replication_ = 1;
  std::vector<std::string> ids;
  for (auto& [id, e] : blocks_)
    ids.push_back(id);
  for (auto& id : ids)
    replicate(id, out);
  return out;
}

pending_effects pending_blocks::hand_over(const std::string& retired_node) {
  pending_effects out;
  replication_ = 1;
  peers_.clear();
  retired_node_ = retired_node;
  std::vector<std::string> ids;
  for (auto& [id, e] : blocks_) {
    if (!e.replicated && e.replica_attempt != 0) {
      e.replica_attempt = 0; // its answer, if any, is ignored
      e.replicated = true;
    }
    if (!retired_node.empty() && e.stored && e.local_node == retired_node) {
      // Its local copy goes with the old store; a location naming the old
      // id would send readers nowhere (and without the WAL or a second
      // copy the block would be unreadable).
      e.stored = false;
      e.local_node.clear();
      e.reported = false;
      out.local_puts.push_back(id);
    }
    ids.push_back(id);
  }
  for (auto& id : ids) {
    replicate(id, out);
    maybe_report(id, out);
  }
  return out;
}

const block_ref* pending_blocks::reported_ref(const std::string& id) const {
  auto i = blocks_.find(id);
  return i == blocks_.end() || !i->second.reported ? nullptr : &i->second.ref;
}

uint64_t pending_blocks::records(const std::string& id) const {
  auto i = blocks_.find(id);
  return i == blocks_.end() ? 0 : i->second.ref.records;
}

const buffer* pending_blocks::bytes(const std::string& id) const {
  auto i = blocks_.find(id);
  return i == blocks_.end() ? nullptr : &i->second.bytes;
}

void pending_blocks::append(entry& e, const std::string& id, pending_effects& out) {
  e.wal_pending = true;
  out.wal_appends.push_back(id);
}

void pending_blocks::replicate(const std::string& id, pending_effects& out) {
  auto i = blocks_.find(id);
  if (i == blocks_.end() || replication_ == 0 || i->second.replicated
      || i->second.replica_attempt != 0)
    return;
  auto& e = i->second;
  if (replication_ < 2) {
    e.replicated = true;
    maybe_report(id, out);
    return;
  }
  if (e.replica_tries >= peers_.size()) {
    // Holding blocks back would stop the stream on a one-worker cluster.
    if (!std::exchange(degraded_, true))
      out.degraded = peers_.empty() ? "no other live worker"
                                    : "no other worker took block " + id;
    e.replicated = true;
    maybe_report(id, out);
    return;
  }
  auto& peer = peers_[next_peer_++ % peers_.size()];
  ++e.replica_tries;
  e.replica_attempt = ++attempts_;
  e.replica_target = peer;
  out.replica_puts.push_back({id, peer, e.replica_attempt});
}

void pending_blocks::maybe_report(const std::string& id, pending_effects& out) {
  auto i = blocks_.find(id);
  if (i == blocks_.end())
    return;
  auto& e = i->second;
  if (!e.stored || !e.logged || !e.replicated || e.reported)
    return;
  e.ref.locations.clear();
  if (!e.local_node.empty())
    e.ref.locations.push_back(e.local_node);
  if (!e.replica_node.empty() && e.replica_node != e.local_node)
    e.ref.locations.push_back(e.replica_node);
  if (e.ref.locations.empty() && e.ref.wal.segment.empty()) {
    // The tracker never learns of data that is not held anywhere.
    out.lost.push_back(id);
    blocks_.erase(i);
    return;
  }
  e.reported = true;
  if (!std::exchange(e.counted, true)) {
    ++blocks_reported_;
    records_reported_ += e.ref.records;
  }
  out.reports.push_back(e.ref);
}

} // namespace sluice
