#pragma once

// Local control signals: timers an actor sends itself and commands from the
// streaming_context that owns the actors. They never cross nodes, so they are
// plain atoms; everything actors exchange as protocol is a Cap'n Proto
// message (messages/).

#include <caf/atom.hpp>

namespace sluice {

using block_tick_atom = caf::atom_constant<caf::atom("blocktick")>;
using batch_tick_atom = caf::atom_constant<caf::atom("batchtick")>;
using connect_atom = caf::atom_constant<caf::atom("sconnect")>;
using start_atom = caf::atom_constant<caf::atom("sstart")>;
using stop_atom = caf::atom_constant<caf::atom("sstop")>;
using stop_receivers_atom = caf::atom_constant<caf::atom("stoprecv")>;
using shutdown_workers_atom = caf::atom_constant<caf::atom("shutwork")>;
using task_done_atom = caf::atom_constant<caf::atom("taskdone")>;
using source_event_atom = caf::atom_constant<caf::atom("srcevent")>;
using wal_append_atom = caf::atom_constant<caf::atom("walappend")>;
using set_tracker_atom = caf::atom_constant<caf::atom("settracker")>;
/// Worker node -> its receiver: stop, reporting every unacknowledged block
/// to the tracker given (answers ReceiverStopped once all are acknowledged);
/// a bool says whether the node drops its store (see pending_blocks).
using hand_over_atom = caf::atom_constant<caf::atom("handover")>;
using source_ended_atom = caf::atom_constant<caf::atom("srcended")>;
using resend_atom = caf::atom_constant<caf::atom("resend")>;
using state_checkpointed_atom = caf::atom_constant<caf::atom("stateckpt")>;

} // namespace sluice
