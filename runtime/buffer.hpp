#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include <capnp/message.h>
#include <kj/array.h>

namespace sluice {

/// An immutable, shared, 8-byte aligned byte buffer: the carrier of every
/// Cap'n Proto message and block in sluice.
///
/// Lifetime: reference counted; copies share the bytes. Concurrency: the bytes
/// never change after construction, so any thread may read a buffer while
/// others hold copies of it. Alignment matters because Cap'n Proto readers
/// need word-aligned input; keeping it here means a local send never copies.
class buffer {
public:
  buffer() = default;

  /// Serializes a finished Cap'n Proto message (one copy, no intermediate).
  static buffer from_builder(capnp::MessageBuilder& builder);

  /// Copies `size` bytes (must be a multiple of 8 to be read as Cap'n Proto).
  static buffer copy_of(const void* data, size_t size);

  size_t size() const noexcept {
    return words_ ? words_->size() * sizeof(uint64_t) - padding_ : 0;
  }

  bool empty() const noexcept {
    return size() == 0;
  }

  const uint8_t* data() const noexcept {
    return words_ ? reinterpret_cast<const uint8_t*>(words_->data()) : nullptr;
  }

  std::string_view view() const noexcept {
    return {reinterpret_cast<const char*>(data()), size()};
  }

  /// The bytes as Cap'n Proto words; empty unless size() % 8 == 0.
  kj::ArrayPtr<const capnp::word> words() const noexcept;

  /// Writable storage for deserializers: allocates `size` bytes.
  static std::pair<buffer, uint8_t*> allocate(size_t size);

private:
  std::shared_ptr<const std::vector<uint64_t>> words_;
  size_t padding_ = 0;
};

} // namespace sluice
