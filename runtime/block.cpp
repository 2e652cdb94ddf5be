#include "runtime/block.hpp"

#include <kj/exception.h>

#include "runtime/codec.hpp"

namespace sluice {

buffer block_builder::finish() {
  // Size the first segment for the whole block: Cap'n Proto then never chains
  // segments, and the block serializes with a single copy.
  auto n = ends_.size();
  auto words = 16 + n * 2 + data_.size() / sizeof(capnp::word) + n;
  capnp::MallocMessageBuilder builder{static_cast<unsigned>(std::min<size_t>(words, 1u << 28)),
                                      capnp::AllocationStrategy::FIXED_SIZE};
  auto block = builder.initRoot<wire::Block>();
  auto records = block.initRecords(static_cast<unsigned>(n));
  size_t begin = 0;
  for (size_t i = 0; i < n; ++i) {
    auto end = ends_[i];
    records.set(static_cast<unsigned>(i),
                capnp::Data::Reader{reinterpret_cast<const kj::byte*>(data_.data()) + begin,
                                    end - begin});
    begin = end;
  }
  auto result = buffer::from_builder(builder);
  clear();
  return result;
}

block_reader::block_reader(buffer bytes) : bytes_(std::move(bytes)) {
  auto words = bytes_.words();
  if (words.size() == 0)
    throw decode_error("block of " + std::to_string(bytes_.size())
                       + " bytes is not a whole number of 8-byte words");
  capnp::ReaderOptions opts;
  // Reading every record once walks about as many words as the block has;
  // twice that (plus slack) bounds hostile pointer aliasing.
  opts.traversalLimitInWords = words.size() * 2 + 1024;
  opts.nestingLimit = 8;
  reader_ = std::make_unique<capnp::FlatArrayMessageReader>(words, opts);
  records_ = reader_->getRoot<wire::Block>().getRecords();
  size_ = records_.size();
}

std::string_view block_reader::record(size_t i) const {
  auto data = records_[static_cast<unsigned>(i)];
  return {reinterpret_cast<const char*>(data.begin()), data.size()};
}

caf::error check_block(const buffer& bytes, uint64_t claimed_records,
                       const std::string& id) {
  try {
    block_reader reader{bytes};
    if (reader.size() != claimed_records)
      return make_error(errc::corrupt_data,
                        "block " + id + " holds " + std::to_string(reader.size())
                          + " records, its header says "
                          + std::to_string(claimed_records));
    return caf::none;
  } catch (const kj::Exception& e) {
    // The description only: kj's what() carries a source location and trace.
    return make_error(errc::corrupt_data, "block " + id + " is not a valid block: "
                                            + e.getDescription().cStr());
  } catch (const std::exception& e) {
    return make_error(errc::corrupt_data,
                      "block " + id + " is not a valid block: " + e.what());
  }
}

} // namespace sluice
