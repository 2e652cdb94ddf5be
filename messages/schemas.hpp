#pragma once

// Every actor-to-actor message type of sluice: one Cap'n Proto schema each,
// carried as msg<Schema>. Adding a schema here registers it on every node.

#include <caf/actor_system_config.hpp>

#include "messages/block.capnp.h"
#include "messages/cluster.capnp.h"
#include "messages/driver.capnp.h"
#include "messages/envelope.hpp"
#include "messages/receiver.capnp.h"
#include "messages/task.capnp.h"

#define SLUICE_MESSAGE_SCHEMAS(X)                                              \
  X(PutBlock)                                                                  \
  X(PutBlockAck)                                                               \
  X(GetBlock)                                                                  \
  X(BlockData)                                                                 \
  X(DropBlocks)                                                                \
  X(ReplicateBlock)                                                            \
  X(RegisterWorker)                                                            \
  X(RegisterWorkerAck)                                                         \
  X(Shutdown)                                                                  \
  X(WorkerChange)                                                              \
  X(StartReceiver)                                                             \
  X(StopReceiver)                                                              \
  X(ReceiverStopped)                                                           \
  X(AddBlock)                                                                  \
  X(AddBlockAck)                                                               \
  X(ReceiverEvent)                                                             \
  X(ReceiverPeers)                                                             \
  X(LaunchTask)                                                                \
  X(TaskResult)                                                                \
  X(AllocateBlocks)                                                            \
  X(BlockAllocation)                                                           \
  X(JobSet)                                                                    \
  X(BatchCompleted)                                                            \
  X(ReleaseBatch)                                                              \
  X(BlockLocations)

namespace sluice {

#define SLUICE_SCHEMA_NAME(name)                                               \
  template <>                                                                  \
  struct schema_name<wire::name> {                                             \
    static constexpr const char* value = "sluice::" #name;                     \
  };
SLUICE_MESSAGE_SCHEMAS(SLUICE_SCHEMA_NAME)
#undef SLUICE_SCHEMA_NAME

/// Registers every msg<Schema> with `cfg`, under the same name on every node.
/// A type missing here would arrive at a remote node as an empty message.
void add_message_types(caf::actor_system_config& cfg);

} // namespace sluice
