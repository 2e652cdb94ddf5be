@0xf96692fc4dc3624c;
# Records of the driver WAL (docs/wal_format.md, "driver log"). Each WAL
# record is one DriverLogEvent. The log is replayed in order at recovery:
# the state it rebuilds is the received-block tracker's (which blocks are
# unallocated, which batch got which inputs) — see docs/recovery.md.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("sluice::wire");

using import "block.capnp".BlockRef;
using import "driver.capnp".InputPartitions;

struct DriverLogEvent {
  union {
    blockAdded :group {
      # A receiver reported a stored block; logged before AddBlockAck.
      stream @0 :UInt32;
      block @1 :BlockRef;
    }
    batchAllocated :group {
      # Batch `batchTime` takes these inputs (blocks, files, queued data);
      # logged before its JobSet is submitted, so a re-run sees the same.
      batchTime @2 :Int64;
      inputs @3 :List(InputPartitions);
    }
    batchCleaned :group {
      # Batch `batchTime` will never be re-run: its inputs are released.
      batchTime @4 :Int64;
    }
  }
}
