#pragma once

#include "messages/nostr/hex.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

/// Key and value encodings of the event store's column families.
///
/// Integers are big-endian and fixed-width, so byte order equals numeric order.
///
/// Newest-first order: every index key ends with the 40-byte suffix
/// `BE64(~created_at) · id(32)`. The timestamp is stored inverted, so a plain
/// FORWARD iteration yields the newest events first, ties by ascending id —
/// exactly the order a NIP-01 REQ wants. We chose the inverted timestamp over
/// reverse iteration because forward iterators work with `iterate_upper_bound`
/// and prefix bloom filters without special cases, and a resume position is
/// just "seek to the suffix, skip it". Timestamps are never negative (NIP-01
/// parsing limits them to [0, 2^53)).
///
/// | family           | key                                              | value                    |
/// |------------------|--------------------------------------------------|--------------------------|
/// | `events`         | id                                               | event header · JSON      |
/// | `by_created`     | suffix                                           | ∅                        |
/// | `by_kind`        | BE32(kind) · suffix                              | ∅                        |
/// | `by_author`      | pubkey · suffix                                  | ∅                        |
/// | `by_author_kind` | pubkey · BE32(kind) · suffix                     | ∅                        |
/// | `by_tag`         | letter · BE32(len) · value · suffix              | ∅                        |
/// | `by_expiration`  | BE64(expiration) · id                            | ∅                        |
/// | `replaceable`    | BE32(kind) · pubkey · d                          | BE64(created_at) · id    |
/// | `deleted`        | 'e' · target id · deleter pubkey                 | deletion id              |
/// | `deleted`        | 'a' · BE32(kind) · pubkey · d                    | BE64(created_at) · deletion id |
///
/// The tag value is length-prefixed so one value can never be a prefix of
/// another's key range. Only single-letter tag names are indexed (NIP-01
/// filters can only query those), and only a tag's first value.
///
/// `deleted` keys an `e` record by target AND deleter: anyone may publish a
/// kind 5 naming any id, so one record per deleter keeps a stranger's claim
/// from overwriting (and so unblocking) the author's own. The block check is
/// still one point lookup: 'e' · id · the arriving event's pubkey.
namespace ferry::store {

using nostr::bytes32;

/// Size of the `~created_at · id` suffix of every index key.
inline constexpr size_t suffix_size = 8 + 32;

/// Size of the binary header in front of the JSON in the `events` family.
inline constexpr size_t event_header_size = 8 + 4 + 32 + 8;

// -- fixed-width integers ------------------------------------------------------

void put_fixed32(std::string& out, uint32_t x);
void put_fixed64(std::string& out, uint64_t x);

/// Reads a big-endian integer from the front of `in` and consumes it.
/// @returns false (consuming nothing) when `in` is too short.
bool get_fixed32(std::string_view& in, uint32_t& out);
bool get_fixed64(std::string_view& in, uint64_t& out);

/// Reads 32 raw bytes from the front of `in` and consumes them.
bool get_bytes32(std::string_view& in, bytes32& out);

void put_bytes32(std::string& out, const bytes32& x);

// -- index keys ------------------------------------------------------------------

/// The inverted timestamp stored in keys.
constexpr uint64_t invert_time(int64_t created_at) {
  return ~static_cast<uint64_t>(created_at);
}

/// Appends the `BE64(~created_at) · id` suffix.
void put_suffix(std::string& out, int64_t created_at, const bytes32& id);

/// A position decoded from a key suffix.
struct suffix_value {
  int64_t created_at = 0;
  bytes32 id{};
};

/// Decodes the last `suffix_size` bytes of an index key (`key` must be long enough).
suffix_value decode_suffix(std::string_view key);

std::string kind_prefix(uint32_t kind);
std::string author_prefix(const bytes32& pubkey);
std::string author_kind_prefix(const bytes32& pubkey, uint32_t kind);
std::string tag_prefix(char letter, std::string_view value);

/// The prefixes above, appended to `out`: the writer builds an event's index
/// keys one after the other in one buffer.
void append_kind_prefix(std::string& out, uint32_t kind);
void append_author_kind_prefix(std::string& out, const bytes32& pubkey,
                               uint32_t kind);
void append_tag_prefix(std::string& out, char letter, std::string_view value);

/// `prefix · suffix`: the full index key.
std::string index_key(std::string_view prefix, int64_t created_at,
                      const bytes32& id);

/// `BE64(expiration) · id`.
std::string expiration_key(int64_t expiration, const bytes32& id);
void append_expiration_key(std::string& out, int64_t expiration,
                           const bytes32& id);

/// True when a tag named `name` is indexed in `by_tag` (a single ASCII letter).
bool is_indexed_tag_name(std::string_view name);

// -- replaceable and deleted -----------------------------------------------------

/// `BE32(kind) · pubkey · d`; `d` is "" for replaceable kinds.
std::string replaceable_key(uint32_t kind, const bytes32& pubkey,
                            std::string_view d);

/// `BE64(created_at) · id`: a replaceable slot's value and an 'a' record's value.
std::string time_id_value(int64_t created_at, const bytes32& id);

/// Decodes a `time_id_value`; nullopt when malformed.
std::optional<suffix_value> decode_time_id_value(std::string_view value);

/// 'e' · target · deleter.
std::string deleted_id_key(const bytes32& target, const bytes32& deleter);

/// 'a' · BE32(kind) · pubkey · d.
std::string deleted_address_key(uint32_t kind, const bytes32& pubkey,
                                std::string_view d);

// -- events family values ----------------------------------------------------------

/// The fixed fields of a stored event, readable without parsing its JSON.
struct event_header {
  int64_t created_at = 0;
  uint32_t kind = 0;
  bytes32 pubkey{};
  /// NIP-40 expiration, 0 when the event has none.
  int64_t expiration = 0;
};

/// header · json.
std::string encode_event_value(const event_header& h, std::string_view json);

/// Appends `encode_event_value(h, json)` to `out`.
void append_event_value(std::string& out, const event_header& h,
                        std::string_view json);

/// Splits a stored value into its header and JSON; nullopt when malformed.
std::optional<event_header> decode_event_value(std::string_view value,
                                               std::string_view* json = nullptr);

// -- meta ----------------------------------------------------------------------------

inline constexpr std::string_view schema_version_key = "schema_version";

/// The schema this build writes and understands. 2: the `changes` log
/// (stores of schema 1 get it backfilled at start-up).
inline constexpr uint32_t schema_version = 2;

/// A key's first eight bytes as a big-endian number, zero-padded: it orders
/// keys as their bytes do, so a sort can decide most comparisons of random
/// keys without reading them again.
inline uint64_t order_prefix(std::string_view key) {
  unsigned char head[8] = {};
  std::memcpy(head, key.data(), key.size() < sizeof(head) ? key.size() : sizeof(head));
  uint64_t result = 0;
  for (auto byte : head)
    result = (result << 8) | byte;
  return result;
}

} // namespace ferry::store
