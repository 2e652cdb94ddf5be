#include "runtime/wal/options.hpp"

namespace sluice::wal {

const char* to_string(fsync_policy x) {
  switch (x) {
    case fsync_policy::always:
      return "always";
    case fsync_policy::none:
      return "none";
  }
  return "unknown";
}

} // namespace sluice::wal
