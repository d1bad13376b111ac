#pragma once

// The memory of refused events: which events a source sent us that
// validation or the write policy refused, so that a catch-up from that
// source skips them (no verifying, no fetching) instead of refusing them
// again. Kept per source: a remote that sends a forged copy of an event can
// only make its own sync skip it.
//
// Family `refused`:
//   'p' → the fingerprint of the write policy the refusals were made under
//   'q' · source → the fingerprint of that source's own rules (a sync
//                  server's `policy`) the refusals were made under
//   'r' · source length (2) · source · id (32) → refused at (8) · reason
//   't' · refused at (8) · source length (2) · source · id → ∅   (by age)
// The age index serves the TTL, the size cap and "the latest".

#include "messages/nostr/hex.hpp"
#include "store/event_store.hpp"

#include <caf/error.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::store {

struct refused_entry {
  std::string source;
  nostr::bytes32 id{};
  /// Unix time of the refusal.
  int64_t at = 0;
  /// The answer it got ("blocked: ...", "invalid: ...").
  std::string reason;
};

/// Remembers that `source` sent `id` and it was refused at `at`.
caf::error remember_refused(event_store& store, std::string_view source,
                            const nostr::bytes32& id, int64_t at,
                            std::string_view reason);

/// The refusal of `id` from `source`, if remembered. A refusal past its TTL
/// is remembered until the next `prune_refused`.
std::optional<refused_entry> find_refused(const event_store& store,
                                          std::string_view source,
                                          const nostr::bytes32& id);

/// Drops from `ids` those `source` sent before and had refused: a sync
/// counts them as held and does not fetch them again. Keeps the order of
/// the rest. @returns how many it dropped.
size_t drop_refused(const event_store& store, std::string_view source,
                    std::vector<nostr::bytes32>& ids);

/// The newest `n` refusals, newest first; only `source`'s unless empty.
std::vector<refused_entry> latest_refused(const event_store& store,
                                          std::string_view source, size_t n);

/// `latest_refused` as a JSON array of {source, id, at, reason}.
std::string refused_json(const event_store& store, std::string_view source,
                         size_t n);

/// Forgets the refusals older than `ttl` and then the oldest beyond
/// `max_entries`. @returns how many were forgotten.
caf::expected<size_t> prune_refused(event_store& store, int64_t now,
                                    std::chrono::seconds ttl,
                                    size_t max_entries);

/// Records `policy` (a fingerprint of the write policy in force) as the one
/// the memory follows. When the memory followed another one, it forgets the
/// refusals that policy made (every reason but `invalid:`, which no policy
/// change makes valid), so that a sync fetches those events again and the
/// new policy judges them. A store without a fingerprint yet forgets
/// nothing. @returns how many refusals were forgotten.
caf::expected<size_t> follow_policy(event_store& store, std::string_view policy);

/// `follow_policy` for the rules of one source alone (a sync server's own
/// `policy`, judged before the node's): when `rules` differ from those
/// recorded for `source`, that source's refusals are forgotten (but
/// `invalid:`), whichever rules made them; other sources keep theirs.
/// @returns how many refusals were forgotten.
caf::expected<size_t> follow_source_policy(event_store& store,
                                           std::string_view source,
                                           std::string_view rules);

} // namespace ferry::store
