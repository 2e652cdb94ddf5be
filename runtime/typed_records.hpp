#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

#include "runtime/block.hpp"
#include "runtime/buffer.hpp"
#include "runtime/codec.hpp"

namespace sluice {

/// A partition kept as decoded records: the typed slot of a stored block at
/// a deserialized storage level (MEMORY_ONLY, MEMORY_AND_DISK and their _2
/// forms).
///
/// Ownership: shares one immutable `std::vector<T>`; the block store, every
/// task reading the partition and an encoding in progress each hold a
/// reference, so a block dropped or spilled from its store stays valid for
/// whoever got it. Concurrency: the vector is const from construction on,
/// so any number of threads may read or encode it at once. The type token is
/// `typeid(std::vector<T>)`: readers ask for their T with records<T>() and
/// get nullptr on a mismatch instead of a bad cast.
///
/// Memory accounting uses estimated_bytes(), an estimate fixed at
/// construction: `size() * sizeof(T)` for the vector's own storage plus the
/// encoded size of up to 32 records sampled evenly across the partition,
/// scaled to all records, for what the records own on the heap (a string's
/// characters, a vector's elements). Encoding a sample instead of the whole
/// partition keeps a deserialized cache write free of a full encode, which
/// is the point of the level; the encoded size is close to the heap payload
/// for the usual record types (strings, numbers, pairs, vectors of those).
class typed_records {
public:
  typed_records() = default;

  /// Takes ownership of `xs`.
  template <class T>
  static typed_records make(std::vector<T> xs) {
    typed_records result;
    auto n = xs.size();
    result.estimate_ = n * sizeof(T) + sampled_heap_bytes(xs);
    result.records_ = std::make_shared<const std::vector<T>>(std::move(xs));
    result.type_ = &typeid(std::vector<T>);
    result.encode_ = &encode_impl<T>;
    result.size_ = n;
    return result;
  }

  /// The records if they are of type T, else nullptr.
  template <class T>
  const std::vector<T>* records() const noexcept {
    if (!records_ || *type_ != typeid(std::vector<T>))
      return nullptr;
    return static_cast<const std::vector<T>*>(records_.get());
  }

  /// The records encoded as one block (what a serialized level would have
  /// stored). Does not change this object.
  buffer encode() const {
    return records_ ? encode_(records_.get()) : buffer{};
  }

  /// Number of records.
  uint64_t size() const noexcept {
    return size_;
  }

  /// Memory the records take, estimated once (see the class comment).
  uint64_t estimated_bytes() const noexcept {
    return estimate_;
  }

  /// The record type's name, for error messages.
  const char* type_name() const noexcept {
    return type_ ? type_->name() : "none";
  }

  explicit operator bool() const noexcept {
    return records_ != nullptr;
  }

private:
  template <class T>
  static buffer encode_impl(const void* xs) {
    return make_block(*static_cast<const std::vector<T>*>(xs));
  }

  template <class T>
  static uint64_t sampled_heap_bytes(const std::vector<T>& xs) {
    constexpr size_t max_samples = 32;
    if (xs.empty())
      return 0;
    auto step = std::max<size_t>(1, xs.size() / max_samples);
    std::string scratch;
    uint64_t sampled = 0;
    size_t samples = 0;
    for (size_t i = 0; i < xs.size() && samples < max_samples; i += step) {
      scratch.clear();
      byte_writer w{scratch};
      codec<T>::encode(w, xs[i]);
      sampled += scratch.size();
      ++samples;
    }
    return sampled * xs.size() / samples;
  }

  std::shared_ptr<const void> records_;
  const std::type_info* type_ = nullptr;
  buffer (*encode_)(const void*) = nullptr;
  uint64_t size_ = 0;
  uint64_t estimate_ = 0;
};

} // namespace sluice
