#pragma once

// The write-ahead log: sluice::wal. One include for users of the component;
// docs/wal_format.md specifies the files it writes.

#include "runtime/wal/crc32c.hpp"
#include "runtime/wal/handle.hpp"
#include "runtime/wal/options.hpp"
#include "runtime/wal/reader.hpp"
#include "runtime/wal/recovery.hpp"
#include "runtime/wal/segments.hpp"
#include "runtime/wal/writer.hpp"
