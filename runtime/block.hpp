#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <capnp/message.h>
#include <capnp/serialize.h>

#include "messages/block.capnp.h"
#include "runtime/buffer.hpp"
#include "runtime/codec.hpp"
#include "runtime/error.hpp"

namespace sluice {

/// Collects encoded records and turns them into one wire::Block.
///
/// Records are encoded back to back into one growing string, so adding a
/// record allocates nothing once the string has grown to the block's size.
/// Not thread-safe: one owner (a task, a generator under its lock).
class block_builder {
public:
  template <class T>
  void add(const T& x) {
    byte_writer w{data_};
    codec<T>::encode(w, x);
    ends_.push_back(data_.size());
  }

  /// Adds a record that is already encoded.
  void add_encoded(std::string_view record) {
    data_.append(record);
    ends_.push_back(data_.size());
  }

  size_t records() const noexcept {
    return ends_.size();
  }

  size_t bytes() const noexcept {
    return data_.size();
  }

  bool empty() const noexcept {
    return ends_.empty();
  }

  /// Builds the block and resets the builder for reuse.
  buffer finish();

  void clear() {
    data_.clear();
    ends_.clear();
  }

private:
  std::string data_;
  std::vector<size_t> ends_;
};

/// Reads a block from untrusted bytes.
///
/// Construction validates the framing and throws (kj::Exception or
/// decode_error) on garbage; callers catch at their edge (a task's input
/// read, a BlockManager's put) and report the block as corrupt. The reader
/// keeps the buffer alive; records are views into it.
class block_reader {
public:
  explicit block_reader(buffer bytes);

  size_t size() const noexcept {
    return size_;
  }

  std::string_view record(size_t i) const;

  /// Decodes every record as T and appends it to `out`.
  template <class T>
  void decode_into(std::vector<T>& out) const {
    out.reserve(out.size() + size_);
    for (size_t i = 0; i < size_; ++i)
      out.emplace_back(decode_all<T>(record(i)));
  }

private:
  buffer bytes_;
  std::unique_ptr<capnp::FlatArrayMessageReader> reader_;
  capnp::List<capnp::Data>::Reader records_;
  size_t size_ = 0;
};

/// Checks that `bytes` is a block of `claimed_records` records:
/// errc::corrupt_data naming block `id` otherwise (never throws).
caf::error check_block(const buffer& bytes, uint64_t claimed_records,
                       const std::string& id);

/// Encodes `xs` into one block.
template <class T>
buffer make_block(const std::vector<T>& xs) {
  block_builder b;
  for (auto& x : xs)
    b.add(x);
  return b.finish();
}

/// Decodes a whole block of T, throwing on malformed input.
template <class T>
std::vector<T> read_block(const buffer& bytes) {
  std::vector<T> result;
  block_reader{bytes}.decode_into(result);
  return result;
}

} // namespace sluice
