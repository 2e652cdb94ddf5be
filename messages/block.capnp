@0xfdf6f8319148f6eb;
# Blocks and the BlockManager protocol. Spec and evolution rules: docs/messages.md.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("sluice::wire");

struct Block {
  # The unit in which records move and are stored: a list of encoded records
  # (record codecs: runtime/codec.hpp). Travels as an envelope payload, never
  # nested in another message, so local sends share it instead of copying.
  records @0 :List(Data);
}

struct BlockRef {
  # Where a block can be read. `locations` are node ids, preferred first.
  id @0 :Text;
  records @1 :UInt64;
  bytes @2 :UInt64;
  locations @3 :List(Text);
  wal @4 :WalHandle;         # set when the receiver WAL holds a copy
}

struct WalHandle {
  # One record of a receiver WAL (docs/wal_format.md): read back directly.
  dir @0 :Text;              # the log directory (in the checkpoint directory)
  segment @1 :Text;          # file name inside `dir`; empty: no WAL copy
  offset @2 :UInt64;
  length @3 :UInt32;
}

struct StorageLevel {
  # How a block is kept (Spark's StorageLevel; runtime/storage_level.hpp).
  # The defaults read as MEMORY_ONLY_SER with one copy: what a writer that
  # predates the field meant.
  useDisk @0 :Bool;                # may spill to the BlockManager's local dir
  deserialized @1 :Bool;           # kept as decoded records where computed
  replication @2 :UInt8 = 1;       # 1 or 2
}

struct PutBlock {
  # Store the envelope's payload under `id`. Answered with PutBlockAck.
  id @0 :Text;
  records @1 :UInt64;
  level @2 :StorageLevel;          # replicas of persisted partitions; unset: memory only
}

struct PutBlockAck {
  id @0 :Text;
  node @1 :Text;
}

struct GetBlock {
  # Answered with BlockData; the payload holds the block when `found`.
  id @0 :Text;
}

struct BlockData {
  id @0 :Text;
  found @1 :Bool;
}

struct ReplicateBlock {
  # ReceiverTracker -> a BlockManager holding block `id`: copy it to `target`
  # (capability [0], that node's BlockManager), whose PutBlockAck is the
  # answer. Restores a received block's second copy after a node loss.
  id @0 :Text;
  target @1 :Text;
  level @2 :StorageLevel;          # the copy's level (its disk flag)
}

struct DropBlocks {
  # Forget these blocks, and every block whose id starts with a prefix.
  ids @0 :List(Text);
  prefixes @1 :List(Text);
}
