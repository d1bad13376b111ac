#pragma once

#include <caf/atom.hpp>
#include <caf/type_id.hpp>

// CAF 0.17: an atom's text is at most 10 characters, and two atoms with the
// same text are the same type, whatever namespace declares them.
#define FERRY_ADD_ATOM(name, text)                                             \
  CAF_ADD_ATOM(ferry_atoms, ferry::atom, name, text)

namespace ferry::atom {

// Re-exported from CAF, so call sites only ever write `atom::x`.
using get = caf::get_atom;
constexpr inline auto get_v = caf::get_atom_v;
using put = caf::put_atom;
constexpr inline auto put_v = caf::put_atom_v;
using publish = caf::publish_atom;
constexpr inline auto publish_v = caf::publish_atom_v;
using subscribe = caf::subscribe_atom;
constexpr inline auto subscribe_v = caf::subscribe_atom_v;
using unsubscribe = caf::unsubscribe_atom;
constexpr inline auto unsubscribe_v = caf::unsubscribe_atom_v;
using flush = caf::flush_atom;
constexpr inline auto flush_v = caf::flush_atom_v;
using tick = caf::tick_atom;
constexpr inline auto tick_v = caf::tick_atom_v;
using leave = caf::leave_atom;
constexpr inline auto leave_v = caf::leave_atom_v;

} // namespace ferry::atom

CAF_BEGIN_TYPE_ID_BLOCK(ferry_atoms, caf::first_custom_type_id)

  // -- ingest path --
  FERRY_ADD_ATOM(ingest, "ingest")
  FERRY_ADD_ATOM(write, "write")
  FERRY_ADD_ATOM(purge, "purge")
  // -- client connections --
  FERRY_ADD_ATOM(frame, "frame")
  FERRY_ADD_ATOM(oversize, "oversize")
  FERRY_ADD_ATOM(closed, "closed")
  FERRY_ADD_ATOM(query, "query")
  FERRY_ADD_ATOM(count, "count")
  FERRY_ADD_ATOM(eose, "eose")
  FERRY_ADD_ATOM(resume, "resume")
  FERRY_ADD_ATOM(read_ahead, "readahead")
  // -- supervision and inspection --
  FERRY_ADD_ATOM(status, "status")
  FERRY_ADD_ATOM(children, "children")
  FERRY_ADD_ATOM(actors, "actors")
  FERRY_ADD_ATOM(restart, "restart")
  FERRY_ADD_ATOM(stop, "stop")
  FERRY_ADD_ATOM(start, "start")
  FERRY_ADD_ATOM(fault, "fault")
  FERRY_ADD_ATOM(stable, "stable")
  FERRY_ADD_ATOM(health, "health")
  FERRY_ADD_ATOM(stats, "stats")
  FERRY_ADD_ATOM(login, "login")
  // -- outbound sync: health tracker --
  FERRY_ADD_ATOM(report, "report")
  FERRY_ADD_ATOM(connecting, "connecting")
  FERRY_ADD_ATOM(connected, "connected")
  FERRY_ADD_ATOM(catchup, "catchup")
  FERRY_ADD_ATOM(caughtup, "caughtup")
  FERRY_ADD_ATOM(live, "live")
  FERRY_ADD_ATOM(failed, "failed")
  FERRY_ADD_ATOM(ratelimit, "ratelimit")
  FERRY_ADD_ATOM(stopped, "stopped")
  FERRY_ADD_ATOM(disabled, "disabled")
  FERRY_ADD_ATOM(delay, "delay")
  // -- outbound sync: pending batches --
  // open, pending and timeout have CAF's texts, so they are CAF's atoms.
  FERRY_ADD_ATOM(open, "open")
  FERRY_ADD_ATOM(pending, "pending")
  FERRY_ADD_ATOM(timeout, "timeout")
  FERRY_ADD_ATOM(lost, "lost")
  FERRY_ADD_ATOM(confirmed, "confirmed")

  // -- outbound sync: connections and manager --
  FERRY_ADD_ATOM(info, "info")
  FERRY_ADD_ATOM(servers, "servers")
  FERRY_ADD_ATOM(server, "server")
  FERRY_ADD_ATOM(sync_now, "sync_now")
  FERRY_ADD_ATOM(cursor, "cursor")
  FERRY_ADD_ATOM(reconnect, "reconnect")
  FERRY_ADD_ATOM(erase, "erase")
  FERRY_ADD_ATOM(deletions, "deletions")
  // -- the hub's change feed --
  FERRY_ADD_ATOM(feed, "feed")
  // -- GRASP-02 proactive sync --
  // connect has CAF's text, so it is CAF's atom.
  FERRY_ADD_ATOM(changed, "changed")
  FERRY_ADD_ATOM(connect, "connect")
  FERRY_ADD_ATOM(drop, "drop")
  FERRY_ADD_ATOM(rebuild, "rebuild")
  FERRY_ADD_ATOM(repos, "repos")
  FERRY_ADD_ATOM(repo, "repo")

  // -- negentropy (NIP-77) --
  FERRY_ADD_ATOM(neg, "neg")

  // -- hosted relays and the infra reconciler --
  FERRY_ADD_ATOM(create, "create")
  FERRY_ADD_ATOM(patch, "patch")
  FERRY_ADD_ATOM(activate, "activate")
  FERRY_ADD_ATOM(deactivate, "deactivate")
  FERRY_ADD_ATOM(relay, "relay")
  FERRY_ADD_ATOM(relays, "relays")
  FERRY_ADD_ATOM(activity, "activity")
  FERRY_ADD_ATOM(members, "members")
  FERRY_ADD_ATOM(complete, "complete")
  FERRY_ADD_ATOM(retry, "retry")
  FERRY_ADD_ATOM(reconcile, "reconcile")
  FERRY_ADD_ATOM(done, "done")

  // -- cluster membership (leave is CAF's, above) --
  FERRY_ADD_ATOM(heartbeat, "heartbeat")
  FERRY_ADD_ATOM(owner, "owner")
  FERRY_ADD_ATOM(hello, "hello")
  FERRY_ADD_ATOM(join, "join")

CAF_END_TYPE_ID_BLOCK(ferry_atoms)

#undef FERRY_ADD_ATOM
