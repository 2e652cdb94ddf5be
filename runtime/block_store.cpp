#include "runtime/block_store.hpp"

#include <exception>

#include "runtime/log.hpp"

namespace sluice {

block_store::block_store() = default;

block_store::block_store(block_store_options opts) : opts_(std::move(opts)) {
}

// disk_'s destructor removes the spill directory with its files.
block_store::~block_store() = default;

disk_store* block_store::disk_locked() {
  // The directory is made under the mutex, once per store: one mkdtemp is
  // cheap next to the spills it enables.
  if (!disk_ && !disk_failed_) {
    auto created = disk_store::create(opts_.local_dir, opts_.tag);
    if (created) {
      disk_ = std::move(*created);
    } else {
      // Spilling is an optimisation of memory, not a condition of
      // correctness: without a directory, disk-level blocks stay in memory.
      disk_failed_ = true;
      SLUICE_WARN("block_store", opts_.tag << ": " << describe(created.error())
                                           << "; disk-level blocks stay in memory");
    }
  }
  return disk_.get();
}

std::string block_store::forget_locked(entry_map::iterator i) {
  auto& e = i->second;
  if (e.file.empty()) {
    memory_ -= e.memory;
    if (e.spilling)
      spilling_ -= e.memory;
  } else {
    disk_bytes_ -= e.file_bytes;
    --disk_blocks_;
  }
  if (e.in_lru) {
    lru_.erase(e.lru);
    e.in_lru = false;
  }
  return std::move(e.file);
}

std::vector<block_store::victim> block_store::pick_victims_locked() {
  std::vector<victim> result;
  while (memory_ - spilling_ > opts_.memory_budget && !lru_.empty()) {
    if (disk_locked() == nullptr)
      break;
    auto i = blocks_.find(lru_.front());
    lru_.pop_front();
    auto& e = i->second;
    e.in_lru = false;
    e.spilling = true;
    spilling_ += e.memory;
    result.push_back(victim{i->first, e.generation, e.block});
  }
  return result;
}

void block_store::spill(std::vector<victim> victims) {
  disk_store* disk = nullptr;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    disk = disk_.get(); // set before any victim was picked, never reset
  }
  for (auto& v : victims) {
    auto path = disk->path_for(v.id, v.generation);
    caf::expected<uint64_t> written{uint64_t{0}};
    auto bytes = v.block.bytes;
    if (bytes.empty() && v.block.typed) {
      try {
        bytes = v.block.typed.encode();
      } catch (const std::exception& e) {
        written = make_error(errc::io_failed, "cannot encode block " + v.id
                                                + " for spilling: " + e.what());
      }
    }
    if (written)
      written = disk->write(path, v.id, bytes, v.block.records);
    bool current = false;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      auto i = blocks_.find(v.id);
      current = i != blocks_.end() && i->second.generation == v.generation
                && i->second.spilling;
      if (current) {
        auto& e = i->second;
        e.spilling = false;
        spilling_ -= e.memory;
        if (written) {
          memory_ -= e.memory;
          e.block = stored_block{};
          e.file = path;
          e.file_bytes = *written;
          disk_bytes_ += e.file_bytes;
          ++disk_blocks_;
          ++spills_;
        }
        // A failed write leaves the block in memory and out of the LRU
        // list, so it is not tried again.
      }
    }
    if (!written)
      SLUICE_WARN("block_store", opts_.tag << ": " << describe(written.error())
                                           << "; the block stays in memory");
    else if (!current)
      disk->remove(path); // dropped or replaced while its file was written
  }
}

void block_store::put(const std::string& id, stored_block block,
                      storage_level level) {
  std::vector<victim> victims;
  std::string old_file;
  disk_store* disk = nullptr;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (auto i = blocks_.find(id); i != blocks_.end()) {
      old_file = forget_locked(i);
      blocks_.erase(i);
    }
    entry e;
    e.records = block.records;
    e.memory = block.memory_size();
    e.generation = ++next_generation_;
    e.block = std::move(block);
    auto& stored = blocks_.emplace(id, std::move(e)).first->second;
    memory_ += stored.memory;
    if (level.use_disk) {
      stored.lru = lru_.insert(lru_.end(), id);
      stored.in_lru = true;
    }
    victims = pick_victims_locked();
    disk = disk_.get();
  }
  if (!old_file.empty())
    disk->remove(old_file);
  if (!victims.empty())
    spill(std::move(victims));
}

caf::expected<stored_block> block_store::get(const std::string& id) {
  // A block replaced while its old file is read is looked up again; twice
  // is plenty, a third replacement during one read means a misbehaving
  // writer and ends in the error of the last read.
  for (int attempt = 0;; ++attempt) {
    std::string path;
    uint64_t generation = 0;
    uint64_t records = 0;
    disk_store* disk = nullptr;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      auto i = blocks_.find(id);
      if (i == blocks_.end())
        return make_error(errc::not_found, "block " + id + " is not stored here");
      auto& e = i->second;
      if (e.file.empty()) {
        if (e.in_lru)
          lru_.splice(lru_.end(), lru_, e.lru); // most recently used
        return e.block;
      }
      path = e.file;
      generation = e.generation;
      records = e.records;
      disk = disk_.get();
    }
    auto bytes = disk->read(path, id, records);
    std::string damaged;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      if (bytes) {
        ++disk_reads_;
        return stored_block{std::move(*bytes), records};
      }
      auto i = blocks_.find(id);
      if (i == blocks_.end())
        return make_error(errc::not_found, "block " + id + " is not stored here");
      if (i->second.generation != generation && attempt < 2)
        continue;
      if (bytes.error().code() == static_cast<uint8_t>(errc::corrupt_data)
          && i->second.generation == generation) {
        // A damaged file stays damaged: forget the block, so later readers
        // go straight to another copy.
        damaged = forget_locked(i);
        blocks_.erase(i);
      }
    }
    if (!damaged.empty())
      disk->remove(damaged);
    SLUICE_WARN("block_store", opts_.tag << ": " << describe(bytes.error()));
    return std::move(bytes.error());
  }
}

caf::expected<stored_block> block_store::get_encoded(const std::string& id) {
  auto result = get(id);
  if (result && result->bytes.empty() && result->typed) {
    try {
      result->bytes = result->typed.encode();
    } catch (const std::exception& e) {
      return make_error(errc::corrupt_data,
                        "cannot encode block " + id + ": " + e.what());
    }
  }
  return result;
}

bool block_store::contains(const std::string& id) const {
  std::lock_guard<std::mutex> guard{mtx_};
  return blocks_.count(id) > 0;
}

bool block_store::on_disk(const std::string& id) const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = blocks_.find(id);
  return i != blocks_.end() && !i->second.file.empty();
}

size_t block_store::erase(const std::vector<std::string>& ids) {
  std::vector<std::string> files;
  size_t result = 0;
  disk_store* disk = nullptr;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto& id : ids) {
      auto i = blocks_.find(id);
      if (i == blocks_.end())
        continue;
      if (auto file = forget_locked(i); !file.empty())
        files.push_back(std::move(file));
      blocks_.erase(i);
      ++result;
    }
    disk = disk_.get();
  }
  for (auto& f : files)
    disk->remove(f);
  return result;
}

size_t block_store::erase_prefix(const std::string& prefix) {
  std::vector<std::string> files;
  size_t result = 0;
  disk_store* disk = nullptr;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = blocks_.lower_bound(prefix);
    while (i != blocks_.end() && i->first.compare(0, prefix.size(), prefix) == 0) {
      if (auto file = forget_locked(i); !file.empty())
        files.push_back(std::move(file));
      i = blocks_.erase(i);
      ++result;
    }
    disk = disk_.get();
  }
  for (auto& f : files)
    disk->remove(f);
  return result;
}

size_t block_store::size() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return blocks_.size();
}

uint64_t block_store::bytes() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return memory_;
}

std::vector<std::string> block_store::ids() const {
  std::lock_guard<std::mutex> guard{mtx_};
  std::vector<std::string> result;
  result.reserve(blocks_.size());
  for (auto& kvp : blocks_)
    result.push_back(kvp.first);
  return result;
}

block_store::stats block_store::statistics() const {
  std::lock_guard<std::mutex> guard{mtx_};
  stats result;
  result.blocks = blocks_.size();
  result.memory_bytes = memory_;
  result.disk_blocks = disk_blocks_;
  result.disk_bytes = disk_bytes_;
  result.spills = spills_;
  result.disk_reads = disk_reads_;
  return result;
}

std::string block_store::spill_dir() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return disk_ ? disk_->dir() : std::string{};
}

} // namespace sluice
