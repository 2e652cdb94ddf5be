@0xd3f0d69149ee71ad;
# The metadata checkpoint: what a restarted driver needs to rebuild its
# schedule. Not an actor message: it lives in checkpoint-<ms> files, framed by
# runtime/checkpoint/metadata.cpp. Spec, framing and field history:
# docs/checkpoint_format.md.
#
# Evolution: add fields only at new ordinals, never renumber, never change a
# type, never reuse an ordinal. Every checkpoint file ever written must stay
# readable: tests/fixtures/checkpoint_v1.capnp is version 1 of this file and
# tests/fixtures/checkpoint-v1.bin a file written with it. All times are
# milliseconds (batch times from the zero time, wall clock since the epoch).

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("sluice::wire");

struct CheckpointOperator {
  # One node of the DStream graph, by its stable id.
  id @0 :Text;
  op @1 :Text;                       # operator kind, e.g. "reduce_by_key"
  slide @2 :Int64;
  window @3 :Int64;
  stateful @4 :Bool;
  checkpointInterval @5 :Int64;      # data checkpoints of a stateful node
}

struct StateCheckpointRef {
  # The newest data checkpoint (state file) of one stateful node.
  nodeId @0 :Text;
  batch @1 :Int64;
  file @2 :Text;
  partitions @3 :UInt32;
}

struct DirectoryPosition {
  # The files of a directory stream already taken by a batch.
  nodeId @0 :Text;
  seen @1 :List(Text);
}

struct ConfigEntry {
  key @0 :Text;
  value @1 :Text;                    # as given on the command line or in a file
}

struct MetadataCheckpoint {
  # -- version 1 ---------------------------------------------------------
  formatVersion @0 :UInt32;          # equals the version in the file header
  checkpointTime @1 :Int64;          # the batch time this checkpoint was written for
  batchInterval @2 :Int64;
  graphFingerprint @3 :UInt64;
  operators @4 :List(CheckpointOperator);
  lastCompleted @5 :Int64 = -1;      # -1: no batch completed yet
  lastGenerated @6 :Int64 = -1;      # -1: no batch generated yet
  pending @7 :List(Int64);           # generated, not completed
  states @8 :List(StateCheckpointRef);
  directories @9 :List(DirectoryPosition);
  # -- version 2 ---------------------------------------------------------
  recoveryHorizon @10 :Int64 = -1;   # earliest batch a recovery may re-run; -1: unknown
  config @11 :List(ConfigEntry);
  writtenAt @12 :Int64;              # wall clock when written
}
