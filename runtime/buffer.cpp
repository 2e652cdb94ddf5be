#include "runtime/buffer.hpp"

#include <cstring>

#include <capnp/serialize.h>
#include <kj/io.h>

namespace sluice {

buffer buffer::from_builder(capnp::MessageBuilder& builder) {
  auto words = capnp::computeSerializedSizeInWords(builder);
  auto [result, out] = allocate(words * sizeof(capnp::word));
  kj::ArrayOutputStream stream{
    kj::arrayPtr(reinterpret_cast<kj::byte*>(out), words * sizeof(capnp::word))};
  capnp::writeMessage(stream, builder);
  return result;
}

buffer buffer::copy_of(const void* data, size_t size) {
  auto [result, out] = allocate(size);
  if (size > 0)
    std::memcpy(out, data, size);
  return result;
}

std::pair<buffer, uint8_t*> buffer::allocate(size_t size) {
  buffer result;
  auto n = (size + sizeof(uint64_t) - 1) / sizeof(uint64_t);
  auto storage = std::make_shared<std::vector<uint64_t>>(n, 0);
  auto* out = reinterpret_cast<uint8_t*>(storage->data());
  result.padding_ = n * sizeof(uint64_t) - size;
  result.words_ = std::move(storage);
  return {std::move(result), out};
}

kj::ArrayPtr<const capnp::word> buffer::words() const noexcept {
  if (!words_ || padding_ != 0)
    return nullptr;
  return kj::arrayPtr(reinterpret_cast<const capnp::word*>(words_->data()),
                      words_->size());
}

} // namespace sluice
