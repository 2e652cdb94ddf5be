#pragma once

#include <exception>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <caf/actor.hpp>
#include <caf/error.hpp>
#include <caf/meta/type_name.hpp>
#include <kj/exception.h>

#include "runtime/buffer.hpp"
#include "runtime/error.hpp"

namespace sluice {

/// Upper bounds for decoding untrusted Cap'n Proto input. A message may not
/// make its reader walk more than this many words, whatever its pointers say.
constexpr uint64_t max_header_traversal_words = 8 * 1024 * 1024; // 64 MiB
constexpr uint32_t max_nesting = 64;

/// The wire name of a schema, used to register msg<Schema> with CAF on every
/// node. Specialized for every schema in messages/schemas.hpp.
template <class Schema>
struct schema_name;

/// The CAF carrier of one Cap'n Proto message.
///
/// `header` is the encoded message of type `Schema`. `payload` is an optional
/// second Cap'n Proto message (a wire::Block) that travels beside the header
/// so that block bytes are never nested and copied into another message.
/// `caps` is a capability table, as in Cap'n Proto RPC: actor handles cannot
/// live inside the bytes, so messages refer to them by index into `caps`.
///
/// Copies share the bytes; a local send never encodes or copies anything.
template <class Schema>
struct msg {
  buffer header;
  buffer payload;
  std::vector<caf::actor> caps;
};

/// Finishes `builder` into a msg.
template <class Schema>
msg<Schema> make_msg(capnp::MessageBuilder& builder, buffer payload = {},
                     std::vector<caf::actor> caps = {}) {
  return msg<Schema>{buffer::from_builder(builder),
                     std::move(payload), std::move(caps)};
}

/// Decodes the header of `m` and calls `f(reader)` where reader is a
/// `Schema::Reader`. Any Cap'n Proto or codec failure inside `f` (a truncated,
/// misaligned or hostile message) is caught here and turned into an
/// errc::malformed_message error; `f` itself may return void or caf::error.
/// This is the one edge where exceptions from message decoding end.
template <class Schema, class F>
caf::error read_msg(const msg<Schema>& m, F&& f) {
  auto words = m.header.words();
  if (words.size() == 0)
    return make_error(errc::malformed_message,
                      std::string{schema_name<Schema>::value}
                        + ": header of " + std::to_string(m.header.size())
                        + " bytes is not a whole number of 8-byte words");
  try {
    capnp::ReaderOptions opts;
    opts.traversalLimitInWords = max_header_traversal_words;
    opts.nestingLimit = max_nesting;
    capnp::FlatArrayMessageReader reader{words, opts};
    auto root = reader.getRoot<Schema>();
    if constexpr (std::is_same_v<decltype(f(root)), void>) {
      f(root);
      return caf::none;
    } else {
      return f(root);
    }
  } catch (const kj::Exception& e) {
    return make_error(errc::malformed_message,
                      std::string{schema_name<Schema>::value} + ": "
                        + e.getDescription().cStr());
  } catch (const std::exception& e) {
    return make_error(errc::malformed_message,
                      std::string{schema_name<Schema>::value} + ": "
                        + e.what());
  }
}

namespace detail {

template <class Inspector, class = void>
struct is_byte_processor : std::false_type {};

template <class Inspector>
struct is_byte_processor<Inspector,
                         std::void_t<decltype(std::declval<Inspector&>()
                                                .apply_raw(size_t{}, nullptr))>>
  : std::true_type {};

/// Largest buffer a peer may send us in one message field.
constexpr size_t max_wire_buffer = size_t{1} << 31;

} // namespace detail

/// Serializes a buffer as one raw byte run (no per-byte work). Loading
/// allocates aligned storage, so the bytes are readable as Cap'n Proto without
/// another copy. A length beyond max_wire_buffer is refused.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, buffer& x) {
  if constexpr (detail::is_byte_processor<Inspector>::value) {
    if constexpr (Inspector::reads_state) {
      size_t n = x.size();
      if (auto err = f.begin_sequence(n))
        return err;
      if (n > 0)
        if (auto err = f.apply_raw(n, const_cast<uint8_t*>(x.data())))
          return err;
      return f.end_sequence();
    } else {
      size_t n = 0;
      if (auto err = f.begin_sequence(n))
        return err;
      if (n > detail::max_wire_buffer)
        return make_error(errc::malformed_message,
                          "buffer of " + std::to_string(n)
                            + " bytes exceeds the wire limit");
      auto [result, out] = buffer::allocate(n);
      if (n > 0)
        if (auto err = f.apply_raw(n, out))
          return err;
      x = std::move(result);
      return f.end_sequence();
    }
  } else {
    // String conversion (deep_to_string) and other inspectors: show the size.
    auto n = x.size();
    return f(caf::meta::type_name("sluice::buffer"), n);
  }
}

template <class Inspector, class Schema>
typename Inspector::result_type inspect(Inspector& f, msg<Schema>& x) {
  return f(caf::meta::type_name(schema_name<Schema>::value), x.header,
           x.payload, x.caps);
}

} // namespace sluice
