@0xbb606914dac355dc;
# Receivers and the ReceiverTracker. See docs/messages.md.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("sluice::wire");

using import "block.capnp".BlockRef;

struct StartReceiver {
  # Tracker -> worker node. Capabilities: [0] the tracker, to report to.
  stream @0 :UInt32;         # the input node's index in the graph
}

struct StopReceiver {
  # Tracker -> receiver: stop the source, cut and report what was buffered,
  # wait until the tracker acknowledged every block, then answer
  # ReceiverStopped.
  # Also tracker -> worker node, to hand over the receiver of `stream` that
  # runs there while the stream runs elsewhere (a worker that re-registered
  # after its receiver was replaced): the node stops that receiver the same
  # way, its unacknowledged blocks going to capability [0], the tracker.
  reason @0 :Text;
  stream @1 :UInt32;
}

struct ReceiverStopped {
  stream @0 :UInt32;
  blocks @1 :UInt64;
  records @2 :UInt64;
}

struct AddBlock {
  # Receiver -> tracker, only after the block is stored (and, with the WAL
  # on, written to the receiver WAL). A request: the receiver keeps the block
  # pending and re-sends it to a restarted driver until AddBlockAck arrives.
  stream @0 :UInt32;
  block @1 :BlockRef;
}

struct AddBlockAck {
  # Tracker -> receiver, once the addition is logged in the driver WAL.
  id @0 :Text;
}

struct ReceiverEvent {
  # Receiver -> tracker: state changes and errors (e.g. a refused connection).
  stream @0 :UInt32;
  node @1 :Text;
  kind @2 :Kind;
  message @3 :Text;
  enum Kind {
    started @0;
    error @1;
    stopped @2;
  }
}

struct ReceiverPeers {
  # Tracker -> receiver, after it started and whenever workers join or leave:
  # where the second copy of each block may go. Capabilities: the
  # BlockManagers of `nodes`, in order. A receiver reports no block before
  # it has heard this once (it cannot know the replication before).
  replication @0 :UInt8 = 1;  # copies wanted: 1, or 2 for a `_2` storage level
  nodes @1 :List(Text);       # live workers other than the receiver's own
}
