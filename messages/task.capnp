@0x9761d392b7862a3b;
# Tasks: JobScheduler <-> TaskExecutor. See docs/messages.md.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("sluice::wire");

using import "block.capnp".BlockRef;
using import "block.capnp".StorageLevel;

struct NodeCount {
  # How many partitions a graph node has in this batch.
  node @0 :UInt32;
  count @1 :UInt32;
}

struct LeafRead {
  # One input of a task: partition `partition` of leaf node `node`.
  node @0 :UInt32;
  partition @1 :UInt32;
  source :union {
    block @2 :BlockRef;              # a received or queued block
    file @3 :Text;                   # a file of a directory stream
    shuffle @4 :List(BlockRef);      # one bucket from every map task that wrote one
  }
  side @5 :UInt32;                   # shuffle reads: which parent of the shuffle
}

struct Peer {
  # Which capability of the envelope is the BlockManager of `node`.
  node @0 :Text;
  cap @1 :UInt32;
}

struct LaunchTask {
  batchTime @0 :Int64;
  job @1 :UInt64;
  stage @2 :UInt32;
  partition @3 :UInt32;
  attempt @4 :UInt32;
  finalNode @5 :UInt32;             # the node whose partition this task computes
  action :union {
    shuffleWrite @6 :UInt32;        # bucket the result for this shuffle node
    output @7 :UInt32;              # run this output node
    cache @12 :UInt32;              # store this (persisted) node's partition
  }
  counts @8 :List(NodeCount);
  reads @9 :List(LeafRead);
  peers @10 :List(Peer);
  shuffleSide @11 :UInt32;          # shuffle writes: which parent this task computes
  replicaNode @13 :Text;            # cache writes: also store each partition there
  storageLevel @14 :StorageLevel;   # cache writes: how to keep the partition (and its copy)
}

struct ShuffleOutput {
  reducer @0 :UInt32;
  id @1 :Text;
  records @2 :UInt64;
  bytes @3 :UInt64;
  replica @4 :Text;                 # cache writes: the node holding a copy, if any
}

struct TaskResult {
  # Payload: the records an output collects on the driver (print, foreach_batch).
  # A cache task reports its stored partition in shuffleOutputs (reducer =
  # the partition).
  ok @0 :Bool;
  error @1 :Text;
  node @2 :Text;
  inputRecords @3 :UInt64;
  shuffleOutputs @4 :List(ShuffleOutput);
  replicaSwitches @5 :UInt32;
}
