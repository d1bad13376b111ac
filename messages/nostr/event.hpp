#pragma once

#include "messages/nostr/hex.hpp"

#include <simdjson.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::nostr {

/// One tag: a non-empty list of strings, e.g. ["e", "<id>", "<relay>"].
using tag = std::vector<std::string>;

/// A Nostr event (NIP-01) with binary id, pubkey and signature.
struct event {
  bytes32 id{};
  bytes32 pubkey{};
  int64_t created_at = 0;
  uint32_t kind = 0;
  std::vector<tag> tags;
  std::string content;
  bytes64 sig{};
};

// -- parsing -----------------------------------------------------------------

/// Parses an event object strictly: exactly the seven NIP-01 fields, each once;
/// id/pubkey 64 lowercase hex, sig 128 lowercase hex, created_at an integer in
/// [0, 2^53), kind an integer in [0, 65535], tags an array of arrays of strings,
/// content a string. Does not check the id or the signature (see `check_event`).
/// @returns an empty string on success, otherwise the reason (no NIP-01 prefix).
std::string parse_event(simdjson::ondemand::value value, event& out);

/// Parses a whole JSON document holding one event object (uses a thread-local
/// parser; `json` needs no padding). Trailing content is rejected.
std::string parse_event(std::string_view json, event& out);

// -- serialization -----------------------------------------------------------

/// Appends `s` as a JSON string literal with NIP-01 escaping (the same bytes
/// JSON.stringify produces): \" \\ \n \r \t \b \f, other bytes < 0x20 as
/// \u00xx (lowercase hex), everything else verbatim.
void append_json_string(std::string& out, std::string_view s);

/// Appends the canonical form `[0,"<pubkey>",<created_at>,<kind>,<tags>,"<content>"]`.
void append_canonical(std::string& out, const event& ev);

/// The canonical form as a new string.
std::string canonical_json(const event& ev);

/// Appends the full event object
/// `{"id":…,"pubkey":…,"created_at":…,"kind":…,"tags":…,"content":…,"sig":…}`.
void append_json(std::string& out, const event& ev);

/// The full event object as a new string: the form Ferry stores and serves.
std::string to_json(const event& ev);

// -- integrity ---------------------------------------------------------------

/// SHA-256 of the canonical form.
bytes32 compute_id(const event& ev);

/// `compute_id`, and `json` becomes `to_json(ev)`: the escaped tags and
/// content are copied from the canonical form, not escaped a second time
/// (an ingest needs both; escaping was ~2.5% of an import's instructions,
/// half of it done twice).
bytes32 compute_id(const event& ev, std::string& json);

/// BIP-340 check of `sig` over `id` with `pubkey`.
bool verify_signature(const event& ev);

/// Recomputes the id and verifies the signature.
/// @returns an empty string when both hold, otherwise the reason (no prefix).
std::string check_event(const event& ev);

// -- kinds and tags (NIP-01, NIP-09, NIP-40) ---------------------------------

/// 0, 3 and 10000–19999: one event per (kind, pubkey).
bool is_replaceable_kind(uint32_t kind);

/// 20000–29999: fanned out, never stored.
bool is_ephemeral_kind(uint32_t kind);

/// 30000–39999: one event per (kind, pubkey, d-tag).
bool is_addressable_kind(uint32_t kind);

/// The first values of every tag named `name`, in order (views into `ev`).
std::vector<std::string_view> tag_values(const event& ev, std::string_view name);

/// The value of the first `d` tag, or "" when there is none.
std::string_view d_tag(const event& ev);

/// The NIP-40 `expiration` timestamp, if the event has a valid one.
std::optional<int64_t> expiration(const event& ev);

} // namespace ferry::nostr
