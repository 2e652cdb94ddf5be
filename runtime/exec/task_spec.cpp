#include "runtime/exec/task_spec.hpp"

#include <stdexcept>

namespace sluice {

std::string task_spec::describe() const {
  return "task " + std::to_string(job) + "." + std::to_string(stage) + "."
         + std::to_string(partition) + " (batch " + std::to_string(batch_time)
         + " ms, attempt " + std::to_string(attempt) + ")";
}

void encode(const block_ref& x, wire::BlockRef::Builder out) {
  out.setId(x.id);
  out.setRecords(x.records);
  out.setBytes(x.bytes);
  auto locs = out.initLocations(static_cast<unsigned>(x.locations.size()));
  for (unsigned i = 0; i < x.locations.size(); ++i)
    locs.set(i, x.locations[i]);
  if (!x.wal.segment.empty()) {
    auto w = out.initWal();
    w.setDir(x.wal.dir);
    w.setSegment(x.wal.segment);
    w.setOffset(x.wal.offset);
    w.setLength(x.wal.length);
  }
}

block_ref decode(wire::BlockRef::Reader in) {
  block_ref result;
  result.id = in.getId();
  result.records = in.getRecords();
  result.bytes = in.getBytes();
  for (auto loc : in.getLocations())
    result.locations.emplace_back(loc);
  if (in.hasWal()) {
    auto w = in.getWal();
    result.wal.dir = w.getDir();
    result.wal.segment = w.getSegment();
    result.wal.offset = w.getOffset();
    result.wal.length = w.getLength();
  }
  return result;
}

void encode(const storage_level& x, wire::StorageLevel::Builder out) {
  out.setUseDisk(x.use_disk);
  out.setDeserialized(!x.serialized);
  out.setReplication(static_cast<uint8_t>(x.replication));
}

storage_level decode(wire::StorageLevel::Reader in) {
  return storage_level::of(in.getUseDisk(), !in.getDeserialized(),
                           in.getReplication());
}

void encode(const task_spec& x, wire::LaunchTask::Builder out) {
  out.setBatchTime(x.batch_time);
  out.setJob(x.job);
  out.setStage(x.stage);
  out.setPartition(x.partition);
  out.setAttempt(x.attempt);
  out.setFinalNode(x.final_node);
  out.setShuffleSide(x.shuffle_side);
  out.setReplicaNode(x.replica_node);
  encode(x.level, out.initStorageLevel());
  if (x.action == task_action::shuffle_write)
    out.getAction().setShuffleWrite(x.target);
  else if (x.action == task_action::cache)
    out.getAction().setCache(x.target);
  else
    out.getAction().setOutput(x.target);
  auto counts = out.initCounts(static_cast<unsigned>(x.counts.all().size()));
  unsigned i = 0;
  for (auto& [node, count] : x.counts.all()) {
    counts[i].setNode(node);
    counts[i].setCount(count);
    ++i;
  }
  auto reads = out.initReads(static_cast<unsigned>(x.reads.size()));
  for (i = 0; i < x.reads.size(); ++i) {
    auto& r = x.reads[i];
    auto w = reads[i];
    w.setNode(r.node);
    w.setPartition(r.partition);
    w.setSide(r.side);
    switch (r.source) {
      case leaf_read::kind::block:
        encode(r.block, w.getSource().initBlock());
        break;
      case leaf_read::kind::file:
        w.getSource().setFile(r.file);
        break;
      case leaf_read::kind::shuffle: {
        auto refs = w.getSource().initShuffle(static_cast<unsigned>(r.shuffle.size()));
        for (unsigned j = 0; j < r.shuffle.size(); ++j)
          encode(r.shuffle[j], refs[j]);
        break;
      }
    }
  }
  auto peers = out.initPeers(static_cast<unsigned>(x.peers.size()));
  for (i = 0; i < x.peers.size(); ++i) {
    peers[i].setNode(x.peers[i].first);
    peers[i].setCap(x.peers[i].second);
  }
}

task_spec decode(wire::LaunchTask::Reader in) {
  task_spec x;
  x.batch_time = in.getBatchTime();
  x.job = in.getJob();
  x.stage = in.getStage();
  x.partition = in.getPartition();
  x.attempt = in.getAttempt();
  x.final_node = in.getFinalNode();
  x.shuffle_side = in.getShuffleSide();
  x.replica_node = in.getReplicaNode();
  x.level = decode(in.getStorageLevel());
  auto action = in.getAction();
  switch (action.which()) {
    case wire::LaunchTask::Action::SHUFFLE_WRITE:
      x.action = task_action::shuffle_write;
      x.target = action.getShuffleWrite();
      break;
    case wire::LaunchTask::Action::OUTPUT:
      x.action = task_action::output;
      x.target = action.getOutput();
      break;
    case wire::LaunchTask::Action::CACHE:
      x.action = task_action::cache;
      x.target = action.getCache();
      break;
    default:
      throw std::runtime_error("unknown task action");
  }
  for (auto c : in.getCounts())
    x.counts.set(c.getNode(), c.getCount());
  for (auto r : in.getReads()) {
    leaf_read lr;
    lr.node = r.getNode();
    lr.partition = r.getPartition();
    lr.side = r.getSide();
    auto src = r.getSource();
    switch (src.which()) {
      case wire::LeafRead::Source::BLOCK:
        lr.source = leaf_read::kind::block;
        lr.block = decode(src.getBlock());
        break;
      case wire::LeafRead::Source::FILE:
        lr.source = leaf_read::kind::file;
        lr.file = src.getFile();
        break;
      case wire::LeafRead::Source::SHUFFLE:
        lr.source = leaf_read::kind::shuffle;
        for (auto ref : src.getShuffle())
          lr.shuffle.push_back(decode(ref));
        break;
      default:
        throw std::runtime_error("unknown leaf read source");
    }
    x.reads.push_back(std::move(lr));
  }
  for (auto p : in.getPeers())
    x.peers.emplace_back(p.getNode(), p.getCap());
  return x;
}

} // namespace sluice
