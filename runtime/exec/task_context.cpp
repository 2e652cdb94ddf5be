#include "runtime/exec/task_context.hpp"

#include <stdexcept>

namespace sluice {

std::string shuffle_prefix(time_ms t) {
  return "s/" + std::to_string(t) + "/";
}

std::string shuffle_block_id(time_ms t, uint32_t node, uint32_t side,
                             uint32_t map_partition, uint32_t bucket) {
  return shuffle_prefix(t) + std::to_string(node) + "/" + std::to_string(side)
         + "/" + std::to_string(map_partition) + "/" + std::to_string(bucket);
}

std::string cached_block_id(uint32_t node, time_ms t, uint32_t p) {
  return "c/" + std::to_string(node) + "/" + std::to_string(t) + "/"
         + std::to_string(p);
}

void task_context::put_cached_block(uint32_t node, uint32_t p,
                                    stored_block block, storage_level level) {
  shuffle_output out;
  out.bucket = p;
  out.id = cached_block_id(node, batch_time_, p);
  out.records = block.records;
  // Deserialized partitions report their estimated size: their encoding
  // is only made if someone needs it.
  out.bytes = block.memory_size();
  if (!store_)
    throw std::logic_error("task has no block store for cached output");
  store_->put(out.id, std::move(block), level);
  shuffle_outputs_.push_back(std::move(out));
}

task_context::task_context(time_ms batch_time, uint32_t partition,
                           uint32_t attempt, partition_counts counts,
                           std::string node, std::shared_ptr<block_store> store)
  : batch_time_(batch_time),
    partition_(partition),
    attempt_(attempt),
    counts_(std::move(counts)),
    node_(std::move(node)),
    store_(std::move(store)) {
}

void task_context::add_blocks(uint32_t leaf, uint32_t p,
                              std::vector<buffer> blocks, uint32_t side) {
  auto& in = inputs_[{leaf, p, side}];
  for (auto& b : blocks)
    in.bytes.push_back(std::move(b));
}

void task_context::add_block(uint32_t leaf, uint32_t p, stored_block block,
                             uint32_t side) {
  auto& in = inputs_[{leaf, p, side}];
  if (block.typed)
    in.typed.push_back(std::move(block.typed));
  else
    in.bytes.push_back(std::move(block.bytes));
}

void task_context::add_file(uint32_t leaf, uint32_t p, std::string path) {
  files_[{leaf, p}] = std::move(path);
}

task_context::input_slot& task_context::slot(uint32_t leaf, uint32_t p,
                                             uint32_t side) {
  auto i = inputs_.find({leaf, p, side});
  if (i == inputs_.end())
    throw std::logic_error("task has no input for node " + std::to_string(leaf)
                           + " partition " + std::to_string(p));
  return i->second;
}

const std::vector<buffer>& task_context::blocks(uint32_t leaf, uint32_t p,
                                                uint32_t side) {
  auto& in = slot(leaf, p, side);
  // A reader that only knows bytes: encode the typed inputs once.
  for (auto& x : in.typed)
    in.bytes.push_back(x.encode());
  in.typed.clear();
  return in.bytes;
}

const std::string& task_context::file(uint32_t leaf, uint32_t p) const {
  auto i = files_.find({leaf, p});
  if (i == files_.end())
    throw std::logic_error("task has no file for node " + std::to_string(leaf)
                           + " partition " + std::to_string(p));
  return i->second;
}

void task_context::put_shuffle_block(uint32_t shuffle_node, uint32_t side,
                                     uint32_t bucket, buffer bytes,
                                     uint64_t records) {
  shuffle_output out;
  out.bucket = bucket;
  out.id = shuffle_block_id(batch_time_, shuffle_node, side, partition_, bucket);
  out.records = records;
  out.bytes = bytes.size();
  if (!store_)
    throw std::logic_error("task has no block store for shuffle output");
  store_->put(out.id, stored_block{std::move(bytes), records});
  shuffle_outputs_.push_back(std::move(out));
}

} // namespace sluice
