#pragma once

#include "messages/nostr/hex.hpp"
#include "messages/nostr/id_hash.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

/// NIP-77 negentropy: range-based set reconciliation, protocol version 1, as
/// hoytech/negentropy's `docs/negentropy-protocol-v1.md` specifies it.
///
/// Messages here are binary; NIP-77 carries them as hex (`encode_hex`,
/// `decode_hex`). Nothing here does I/O or keeps a clock: a relay session or
/// a sync connection feeds in one message and sends what comes out, so both
/// sides drop into an actor as plain state.
///
/// Every decoder takes any byte string: it yields a result or a reason, and
/// allocates at most in proportion to its input.
namespace ferry::nostr::negentropy {

/// Protocol version 1.
inline constexpr uint8_t protocol_version = 0x61;

/// The timestamp reserved for "infinity", the end of the last range.
inline constexpr uint64_t infinity = std::numeric_limits<uint64_t>::max();

inline constexpr size_t fingerprint_size = 16;

/// The smallest frame size limit that still leaves room to make progress
/// (the reference implementation's floor).
inline constexpr size_t min_frame_size_limit = 4096;

using fingerprint = std::array<uint8_t, fingerprint_size>;

/// One record: an event's created_at and id.
struct item {
  uint64_t timestamp = 0;
  bytes32 id{};
};

// Relays hold millions of these per item set: no padding, no pointers.
static_assert(sizeof(item) == 40, "an item is a u64 and a 32-byte id");

/// Timestamp ascending, then id ascending (bytewise).
bool operator<(const item& x, const item& y);
bool operator==(const item& x, const item& y);

/// The exclusive upper end of a range: a timestamp and an id prefix whose
/// omitted bytes are zero.
struct bound {
  uint64_t timestamp = 0;
  /// 0..32 bytes of `id` are significant; the rest are zero.
  uint8_t prefix_size = 0;
  bytes32 id{};

  /// The bound just below `x` (its full id).
  static bound at(const item& x);
};

bool operator==(const bound& x, const bound& y);

/// True when `x` lies below `b`, i.e. inside a range that ends at `b`.
bool below(const item& x, const bound& b);

/// What a range's payload says.
enum class mode : uint8_t {
  /// The sender does not want to process this range further.
  skip = 0,
  /// A digest of every id the sender has in the range.
  fingerprint = 1,
  /// Every id the sender has in the range.
  id_list = 2,
};

/// One range of a message; its lower end is the previous range's `upper`.
struct range {
  bound upper;
  mode kind = mode::skip;
  /// For `mode::fingerprint`.
  fingerprint digest{};
  /// For `mode::id_list`.
  std::vector<bytes32> ids;
};

/// A decoded message of our version: adjacent ranges, ascending.
struct message {
  std::vector<range> ranges;
};

// -- codec ----------------------------------------------------------------------

/// Appends `x` as a varint: base-128 digits, most significant first.
void put_varint(std::string& out, uint64_t x);

/// Reads a varint from the front of `in` and consumes it.
/// @returns false (consuming an unspecified amount) when `in` ends inside the
///          varint or its value does not fit 64 bits.
bool get_varint(std::string_view& in, uint64_t& out);

/// Builds a message range by range, tracking the timestamp deltas. `mark`
/// and `rollback` take back ranges that would not fit a frame.
class encoder {
public:
  /// Starts a message: the version byte.
  encoder();

  void add_skip(const bound& upper);
  void add_fingerprint(const bound& upper, const fingerprint& digest);
  template <class Iterator>
  void add_id_list(const bound& upper, Iterator first, Iterator last,
                   size_t count) {
    add_bound(upper);
    put_varint(out_, static_cast<uint64_t>(mode::id_list));
    put_varint(out_, count);
    for (; first != last; ++first)
      append_id(*first);
  }
  void add(const range& r);

  /// Bytes so far, the version byte included.
  size_t size() const {
    return out_.size();
  }

  struct position {
    size_t size;
    uint64_t last_timestamp;
  };
  position mark() const {
    return {out_.size(), last_timestamp_};
  }
  void rollback(const position& p) {
    out_.resize(p.size);
    last_timestamp_ = p.last_timestamp;
  }

  /// The message; the encoder is spent afterwards.
  std::string take() {
    return std::move(out_);
  }

private:
  void add_bound(const bound& b);
  void append_id(const bytes32& id);
  void append_id(const item& x) {
    append_id(x.id);
  }

  std::string out_;
  uint64_t last_timestamp_ = 0;
};

/// `msg` with our version byte in front.
std::string encode(const message& msg);

/// How `decode` fared.
enum class decode_status {
  ok,
  /// A well-formed version byte of another negentropy version; a relay
  /// answers it with a message holding only our version byte.
  unsupported_version,
  /// Anything else wrong; the reason says what.
  malformed,
};

/// Decodes a whole message of our version.
/// @param reason set to a short text unless the status is `ok`.
decode_status decode(std::string_view in, message& out, std::string& reason);

/// Lowercase hex of a binary message.
std::string encode_hex(std::string_view binary);

/// Decodes lowercase hex of any even length into `out`.
/// @returns false on an odd length or any non-lowercase-hex character.
bool decode_hex(std::string_view hex, std::string& out);

// -- the item set -----------------------------------------------------------------

/// The records of one side, sorted and without duplicates, in one
/// contiguous vector (40 bytes a record, no allocation per record); immutable
/// once built, so one set can serve many sessions from any thread.
class item_set {
public:
  item_set() = default;

  /// Sorts `items` unless in order, drops duplicates, trims spare capacity.
  explicit item_set(std::vector<item> items);

  size_t size() const {
    return items_.size();
  }

  /// Bytes the set holds, itself included.
  size_t memory_bytes() const {
    return sizeof(*this) + items_.capacity() * sizeof(item);
  }

  const item& operator[](size_t i) const {
    return items_[i];
  }

  const std::vector<item>& items() const {
    return items_;
  }

  /// The first index in [first, last) whose item is not below `b`.
  size_t lower_bound(size_t first, size_t last, const bound& b) const;

  /// First 16 bytes of SHA-256(sum of the ids in [first, last) as 256-bit
  /// little-endian integers mod 2^256 · varint(last - first)).
  fingerprint digest(size_t first, size_t last) const;

private:
  std::vector<item> items_;
};

using item_set_ptr = std::shared_ptr<const item_set>;

// -- the two sides ------------------------------------------------------------------

/// The default limit of the queries we send: big enough to move ~1,800 ids
/// per round, small enough that the hex frame (twice as long) fits NIP-01
/// relays' usual 128 KiB limit on the messages they read.
inline constexpr size_t default_frame_size_limit = 60000;

/// The default limit of a relay's answers. Clients read much larger messages
/// than relays accept (nostr-tools has no limit, Ferry's connections 16 MiB),
/// and a roomy answer splits every range of a large difference in one
/// round: 1% of 100,000 items differing settles in 4 rounds against a
/// client sending 60,000-byte queries, where 60,000-byte answers take 8.
/// As hex with its JSON it stays under Ferry's own 512 KiB message limit,
/// so a Ferry peer may send queries this large as well.
inline constexpr size_t default_relay_frame_size_limit = 250000;

/// The responding side (a relay). Stateless between messages apart from the
/// item set, so rounds may be answered from any thread, one at a time.
class server {
public:
  /// @param frame_size_limit largest response in bytes (binary); 0 for none,
  ///        otherwise raised to at least `min_frame_size_limit`.
  explicit server(item_set_ptr items,
                  size_t frame_size_limit = default_frame_size_limit);

  /// Answers one query of the client.
  /// @returns "" and the response in `response`, or the reason the query is
  ///          unusable. A query of another negentropy version is answered
  ///          with our version byte alone, as the protocol asks.
  std::string reconcile(std::string_view query, std::string& response) const;

  const item_set& items() const {
    return *items_;
  }

private:
  item_set_ptr items_;
  size_t frame_size_limit_;
};

/// The initiating side (a syncing client): `initiate` once, then `reconcile`
/// each response until `done`. Collects no ids itself: each round hands over
/// the ids it discovered.
class client {
public:
  /// What one response taught us.
  struct round {
    /// The next query; nullopt once reconciliation is complete.
    std::optional<std::string> next;
    /// Ids we have and the other side lacks.
    std::vector<bytes32> have;
    /// Ids the other side has and we lack.
    std::vector<bytes32> need;
  };

  /// @param frame_size_limit largest query in bytes (binary); 0 for none,
  ///        otherwise raised to at least `min_frame_size_limit`.
  explicit client(item_set_ptr items,
                  size_t frame_size_limit = default_frame_size_limit);

  /// The first query (binary). Call once.
  std::string initiate();

  /// Processes one response. Ids are reported exactly once over all rounds:
  /// when a frame limit folds the rest of a round into one fingerprint, the
  /// next rounds may settle ranges again, and their ids are filtered here.
  /// @returns "" on success, otherwise the reason; the session is then over.
  std::string reconcile(std::string_view response, round& out);

  /// True once a response left nothing to ask.
  bool done() const {
    return done_;
  }

  /// Responses processed so far.
  size_t rounds() const {
    return rounds_;
  }

  const item_set& items() const {
    return *items_;
  }

private:
  item_set_ptr items_;
  size_t frame_size_limit_;
  std::unordered_set<bytes32, nostr::id_hash> reported_;
  bool initiated_ = false;
  bool done_ = false;
  size_t rounds_ = 0;
  /// The largest response so far, in bytes.
  size_t largest_answer_ = 0;
};

} // namespace ferry::nostr::negentropy
