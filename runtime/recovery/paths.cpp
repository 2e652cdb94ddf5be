#include "runtime/recovery/paths.hpp"

#include <cctype>
#include <filesystem>

namespace sluice {

std::string receiver_wal_root(const std::string& checkpoint_dir, uint32_t stream) {
  return (std::filesystem::path{checkpoint_dir} / "receiver-wal"
          / std::to_string(stream))
    .string();
}

std::string receiver_wal_dir(const std::string& checkpoint_dir, uint32_t stream,
                             const std::string& node, uint64_t incarnation) {
  std::string safe;
  for (char c : node)
    safe += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.')
              ? c
              : '_';
  return (std::filesystem::path{receiver_wal_root(checkpoint_dir, stream)}
          / (safe + "-" + std::to_string(incarnation)))
    .string();
}

} // namespace sluice
