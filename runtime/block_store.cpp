#include "runtime/block_store.hpp"

namespace sluice {

void block_store::put(const std::string& id, stored_block block) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto size = block.bytes.size();
  auto [i, added] = blocks_.try_emplace(id, std::move(block));
  if (!added) {
    bytes_ -= i->second.bytes.size();
    i->second = std::move(block);
  }
  bytes_ += size;
}

std::optional<stored_block> block_store::get(const std::string& id) const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = blocks_.find(id);
  if (i == blocks_.end())
    return std::nullopt;
  return i->second;
}

bool block_store::contains(const std::string& id) const {
  std::lock_guard<std::mutex> guard{mtx_};
  return blocks_.count(id) > 0;
}

size_t block_store::erase(const std::vector<std::string>& ids) {
  std::lock_guard<std::mutex> guard{mtx_};
  size_t result = 0;
  for (auto& id : ids) {
    auto i = blocks_.find(id);
    if (i != blocks_.end()) {
      bytes_ -= i->second.bytes.size();
      blocks_.erase(i);
      ++result;
    }
  }
  return result;
}

size_t block_store::erase_prefix(const std::string& prefix) {
  std::lock_guard<std::mutex> guard{mtx_};
  size_t result = 0;
  auto i = blocks_.lower_bound(prefix);
  while (i != blocks_.end() && i->first.compare(0, prefix.size(), prefix) == 0) {
    bytes_ -= i->second.bytes.size();
    i = blocks_.erase(i);
    ++result;
  }
  return result;
}

size_t block_store::size() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return blocks_.size();
}

uint64_t block_store::bytes() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return bytes_;
}

std::vector<std::string> block_store::ids() const {
  std::lock_guard<std::mutex> guard{mtx_};
  std::vector<std::string> result;
  result.reserve(blocks_.size());
  for (auto& kvp : blocks_)
    result.push_back(kvp.first);
  return result;
}

} // namespace sluice
