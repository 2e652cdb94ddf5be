#include "runtime/wal/handle.hpp"

namespace sluice::wal {

std::string to_string(const handle& x) {
  return x.segment + "@" + std::to_string(x.offset) + "+" +
         std::to_string(x.length);
}

} // namespace sluice::wal
