#pragma once

// Checkpoint files: everything a driver needs to write and recover them.
// See runtime/checkpoint/README.md and docs/checkpoint_format.md.

#include "runtime/checkpoint/checkpoint_dir.hpp"
#include "runtime/wal/crc32c.hpp"
#include "runtime/checkpoint/metadata.hpp"
#include "runtime/checkpoint/state_file.hpp"
