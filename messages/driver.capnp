@0x8d8d99aba3eddc54;
# Messages between the driver's actors. See docs/messages.md.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("sluice::wire");

using import "block.capnp".BlockRef;

struct AllocateBlocks {
  # JobGenerator -> ReceiverTracker: give batch `batchTime` every unallocated block.
  batchTime @0 :Int64;
  others @1 :List(InputPartitions);
  # The batch's other inputs (files of directory streams, queued data): the
  # tracker logs them with its blocks in the batch's one batchAllocated record.
}

struct StreamBlocks {
  stream @0 :UInt32;
  blocks @1 :List(BlockRef);
}

struct BlockAllocation {
  batchTime @0 :Int64;
  streams @1 :List(StreamBlocks);
}

struct InputPartition {
  union {
    block @0 :BlockRef;
    file @1 :Text;
  }
  records @2 :UInt64;      # known for blocks, 0 (counted by tasks) for files
}

struct InputPartitions {
  node @0 :UInt32;
  partitions @1 :List(InputPartition);
}

struct JobSet {
  # JobGenerator -> JobScheduler: run every output operation for this batch.
  batchTime @0 :Int64;
  inputs @1 :List(InputPartitions);
  recompute @2 :Bool;      # recovery: rebuild cached and state partitions only, no outputs
  finalBatch @3 :Bool;     # the last batch of a graceful stop: every stateful node due
                           # in it writes a data checkpoint, whatever its interval
}

struct BatchCompleted {
  # JobScheduler -> JobGenerator (and listeners), once every job of a batch ended.
  batchTime @0 :Int64;
  records @1 :UInt64;
  submittedMs @2 :Int64;     # wall clock, ms since the epoch
  startedMs @3 :Int64;
  finishedMs @4 :Int64;
  failedJobs @5 :UInt32;
  error @6 :Text;
  bytes @7 :UInt64;          # encoded input bytes of the batch's blocks
  states @8 :List(StateCheckpointRef); # data checkpoints written for this batch
}

struct StateCheckpointRef {
  # A data checkpoint file of one stateful node's partitions.
  node @0 :UInt32;
  batchTime @1 :Int64;
  file @2 :Text;
  partitions @3 :UInt32;
}

struct ReleaseBatch {
  # JobGenerator -> ReceiverTracker after a batch completed: drop its input blocks.
  batchTime @0 :Int64;
}

struct BlockLocations {
  # ReceiverTracker -> JobScheduler: a block allocated to batch `batchTime`
  # got a new copy (re-replication after a node loss); `locations` replace
  # the ones the batch's inputs name.
  batchTime @0 :Int64;
  id @1 :Text;
  locations @2 :List(Text);
}
