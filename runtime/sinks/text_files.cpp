#include "runtime/sinks/text_files.hpp"

#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string_view>
#include <vector>

#include "runtime/error.hpp"
#include "runtime/io/files.hpp"

namespace sluice {

std::string part_file_name(uint32_t p) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "part-%05u", p);
  return buf;
}

std::string batch_dir(const std::string& prefix, const std::string& suffix,
                      time_ms t) {
  auto result = prefix + "-" + std::to_string(t);
  if (!suffix.empty())
    result += "." + suffix;
  return result;
}

void write_part_file(const std::string& dir, uint32_t p,
                     const std::string& content) {
  // A batch directory created without an fsync of its parent may vanish on
  // power loss with every part file fsynced inside it.
  if (auto err = io::ensure_directory(dir))
    throw std::runtime_error(explanation(err));
  // Hidden temporary name: readers of the output directory skip it.
  auto path = dir + "/" + part_file_name(p);
  if (auto err = io::write_file_atomically(path, content.data(),
                                           content.size(),
                                           io::temporary_name::hidden))
    throw std::runtime_error(explanation(err));
}

} // namespace sluice
