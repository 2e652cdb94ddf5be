#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <caf/actor.hpp>

#include "messages/schemas.hpp"
#include "runtime/block.hpp"
#include "runtime/error.hpp"
#include "runtime/exec/task_context.hpp"

namespace sluice {

/// Where one read of a block from its copies stands: which location is
/// next, and why each one tried so far failed. Owned by the actor that
/// reads (a task runner per input block, the state checkpointer per state
/// partition); not thread-safe.
struct block_read {
  block_ref ref;
  size_t next_location = 0;
  std::string failures;          ///< why earlier locations failed
  uint32_t failed_locations = 0;
  std::chrono::steady_clock::time_point started; ///< the first attempt

  void failed(const std::string& why) {
    if (!failures.empty())
      failures += "; ";
    failures += why;
    ++failed_locations;
  }
};

/// A remote read that takes longer than this counts as a failed location.
constexpr auto block_read_timeout = std::chrono::seconds{30};

/// The one failover loop over a block's copies (hot standby). Requests the
/// block from its next listed location, skipping `skip` (the reader's own
/// node, read locally before) and locations `resolve` names no BlockManager
/// for (a lost node), until a copy answers intact: it parses and holds the
/// records its reference says (check_block), since a damaged copy is a
/// failed location like a missing one. Then `ok(bytes, location)`; when no
/// location is left, `exhausted()` (the caller tries the WAL, or fails).
/// `get()` returns the block_read, looked up again after every reply (the
/// caller's container must keep it, not necessarily at the same address).
template <class Self, class Get, class Resolve, class Ok, class Exhausted>
void read_next_copy(Self* self, Get get, Resolve resolve, std::string skip, Ok ok,
                    Exhausted exhausted) {
  auto& r = get();
  // Set once, at the first attempt, whoever made it (a task runner counts
  // its local store's failure before it comes here).
  if (r.started == std::chrono::steady_clock::time_point{})
    r.started = std::chrono::steady_clock::now();
  while (r.next_location < r.ref.locations.size()) {
    auto loc = r.ref.locations[r.next_location++];
    if (loc == skip)
      continue;
    const caf::actor* bm = resolve(loc);
    if (bm == nullptr || !*bm) {
      r.failed(loc + ": no BlockManager known");
      continue;
    }
    capnp::MallocMessageBuilder b;
    b.initRoot<wire::GetBlock>().setId(r.ref.id);
    auto again = [self, get, resolve, skip, ok, exhausted](const std::string& why) {
      get().failed(why);
      read_next_copy(self, get, resolve, skip, ok, exhausted);
    };
    self->request(*bm, block_read_timeout, make_msg<wire::GetBlock>(b))
      .then(
        [get, loc, ok, again](const msg<wire::BlockData>& reply) {
          bool found = false;
          auto err = read_msg(reply, [&](wire::BlockData::Reader x) {
            found = x.getFound();
          });
          auto& cur = get();
          if (err)
            again(loc + ": " + describe(err));
          else if (!found || reply.payload.empty())
            again(loc + ": block not found");
          else if (auto bad = check_block(reply.payload, cur.ref.records, cur.ref.id))
            again(loc + ": " + describe(bad));
          else
            ok(reply.payload, loc);
        },
        [loc, again](caf::error& err) { again(loc + ": " + describe(err)); });
    return;
  }
  exhausted();
}

} // namespace sluice
