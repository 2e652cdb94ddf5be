@0x9afea6e44663df90;
# Node membership: workers registering with the driver. See docs/messages.md.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("sluice::wire");

struct RegisterWorker {
  # Sent by a worker node to the driver's membership actor.
  # Capabilities: [0] BlockManager, [1] TaskExecutor, [2] the worker node actor.
  node @0 :Text;             # unique per process incarnation: host/pid/start time
  slots @1 :UInt32;          # tasks the TaskExecutor runs at once
  graphFingerprint @2 :UInt64;
  graphSize @3 :UInt32;
  receivers @4 :List(UInt32); # streams whose receivers run here (they outlive a driver)
}

struct RegisterWorkerAck {
  accepted @0 :Bool;
  reason @1 :Text;           # why a registration was refused
  driverNode @2 :Text;
  newIncarnation @3 :Bool;   # refused: the driver declared this node id lost (its
                             # connection died); nothing of it is trusted. The worker
                             # stops its receivers, handing their unacknowledged
                             # blocks to the tracker (capability [0] of this answer),
                             # drops its blocks and registers again under a new node id.
  node @4 :Text;             # the node id this answers (a worker that changed its id
                             # ignores answers meant for an earlier one)
}

struct Shutdown {
  # The driver stopped gracefully: the worker node stops and its process exits.
  reason @0 :Text;
}

struct WorkerChange {
  # Driver-internal: membership tells the tracker and the scheduler.
  # Capabilities when joined: [0] BlockManager, [1] TaskExecutor, [2] node actor.
  node @0 :Text;
  joined @1 :Bool;
  slots @2 :UInt32;
  receivers @3 :List(UInt32); # as in RegisterWorker
  refreshed @4 :Bool;        # joined: a registered node re-announced itself with the
                             # same node actor (its BlockManager or TaskExecutor was
                             # restarted): replace the handles, keep everything else
}
