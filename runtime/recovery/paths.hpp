#pragma once

// Where durable state lives inside a checkpoint directory (docs/recovery.md):
//   checkpoint-*          metadata checkpoints (runtime/checkpoint)
//   state/                data checkpoints of stateful streams
//   driver-wal/           the driver log (runtime/recovery/driver_log)
//   receiver-wal/<stream>/<node>-<incarnation>/
//                         one receiver WAL per receiver incarnation: a
//                         restarted receiver never appends to its
//                         predecessor's log, and two never share one.

#include <cstdint>
#include <string>

namespace sluice {

/// The receiver WALs of one stream.
std::string receiver_wal_root(const std::string& checkpoint_dir, uint32_t stream);

/// The WAL of one receiver incarnation (node ids are made file-name safe).
std::string receiver_wal_dir(const std::string& checkpoint_dir, uint32_t stream,
                             const std::string& node, uint64_t incarnation);

} // namespace sluice
