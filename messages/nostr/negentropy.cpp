#include "messages/nostr/negentropy.hpp"

#include "messages/nostr/sha256.hpp"

#include <algorithm>
#include <cstring>

namespace ferry::nostr::negentropy {

// -- items and bounds -------------------------------------------------------------

bool operator<(const item& x, const item& y) {
  return x.timestamp != y.timestamp ? x.timestamp < y.timestamp : x.id < y.id;
}

bool operator==(const item& x, const item& y) {
  return x.timestamp == y.timestamp && x.id == y.id;
}

bound bound::at(const item& x) {
  return bound{x.timestamp, 32, x.id};
}

bool operator==(const bound& x, const bound& y) {
  return x.timestamp == y.timestamp && x.prefix_size == y.prefix_size
         && x.id == y.id;
}

bool below(const item& x, const bound& b) {
  // The omitted bytes of a bound's prefix are zero, so comparing whole ids
  // is the protocol's comparison.
  return x.timestamp != b.timestamp ? x.timestamp < b.timestamp : x.id < b.id;
}

namespace {

/// The shortest bound that separates `prev` from `next` (prev < next).
bound minimal_bound(const item& prev, const item& next) {
  if (prev.timestamp != next.timestamp)
    return bound{next.timestamp, 0, {}};
  size_t shared = 0;
  while (shared < 32 && prev.id[shared] == next.id[shared])
    ++shared;
  bound b;
  b.timestamp = next.timestamp;
  b.prefix_size = static_cast<uint8_t>(std::min<size_t>(shared + 1, 32));
  std::copy_n(next.id.begin(), b.prefix_size, b.id.begin());
  return b;
}

} // namespace

// -- codec ------------------------------------------------------------------------

void put_varint(std::string& out, uint64_t x) {
  char digits[10];
  size_t n = 0;
  do {
    digits[n++] = static_cast<char>(x & 0x7f);
    x >>= 7;
  } while (x != 0);
  while (n > 1)
    out.push_back(static_cast<char>(digits[--n] | 0x80));
  out.push_back(digits[0]);
}

bool get_varint(std::string_view& in, uint64_t& out) {
  uint64_t value = 0;
  for (;;) {
    if (in.empty())
      return false;
    auto byte = static_cast<uint8_t>(in.front());
    in.remove_prefix(1);
    if (value > (std::numeric_limits<uint64_t>::max() >> 7))
      return false;
    value = (value << 7) | (byte & 0x7f);
    if ((byte & 0x80) == 0)
      break;
  }
  out = value;
  return true;
}

encoder::encoder() {
  out_.push_back(static_cast<char>(protocol_version));
}

void encoder::add_bound(const bound& b) {
  // Infinity is 0; any other timestamp is 1 + its distance from the previous
  // one. Bounds ascend within a message, so the distance is never negative.
  if (b.timestamp == infinity) {
    last_timestamp_ = infinity;
    put_varint(out_, 0);
  } else {
    put_varint(out_, b.timestamp - last_timestamp_ + 1);
    last_timestamp_ = b.timestamp;
  }
  put_varint(out_, b.prefix_size);
  out_.append(reinterpret_cast<const char*>(b.id.data()), b.prefix_size);
}

void encoder::append_id(const bytes32& id) {
  out_.append(reinterpret_cast<const char*>(id.data()), id.size());
}

void encoder::add_skip(const bound& upper) {
  add_bound(upper);
  put_varint(out_, static_cast<uint64_t>(mode::skip));
}

void encoder::add_fingerprint(const bound& upper, const fingerprint& digest) {
  add_bound(upper);
  put_varint(out_, static_cast<uint64_t>(mode::fingerprint));
  out_.append(reinterpret_cast<const char*>(digest.data()), digest.size());
}

void encoder::add(const range& r) {
  switch (r.kind) {
    case mode::skip:
      add_skip(r.upper);
      break;
    case mode::fingerprint:
      add_fingerprint(r.upper, r.digest);
      break;
    case mode::id_list:
      add_id_list(r.upper, r.ids.begin(), r.ids.end(), r.ids.size());
      break;
  }
}

std::string encode(const message& msg) {
  encoder enc;
  for (const auto& r : msg.ranges)
    enc.add(r);
  return enc.take();
}

namespace {

/// Reads the message body after the version byte, tracking the timestamp
/// deltas as `encoder::add_bound` wrote them.
class body_decoder {
public:
  explicit body_decoder(std::string_view in) : in_(in) {
  }

  bool empty() const {
    return in_.empty();
  }

  /// @returns "" or the reason.
  std::string next(range& out) {
    if (auto failure = read_bound(out.upper); !failure.empty())
      return failure;
    uint64_t m = 0;
    if (!get_varint(in_, m))
      return "truncated or oversized mode";
    switch (m) {
      case static_cast<uint64_t>(mode::skip):
        out.kind = mode::skip;
        return {};
      case static_cast<uint64_t>(mode::fingerprint):
        out.kind = mode::fingerprint;
        if (in_.size() < fingerprint_size)
          return "truncated fingerprint";
        std::memcpy(out.digest.data(), in_.data(), fingerprint_size);
        in_.remove_prefix(fingerprint_size);
        return {};
      case static_cast<uint64_t>(mode::id_list): {
        out.kind = mode::id_list;
        uint64_t count = 0;
        if (!get_varint(in_, count))
          return "truncated or oversized id count";
        // Checked before allocating: a count can claim far more than is sent.
        if (count > in_.size() / 32)
          return "id list claims " + std::to_string(count)
                 + " ids but only " + std::to_string(in_.size())
                 + " bytes follow";
        out.ids.resize(count);
        for (auto& id : out.ids) {
          std::memcpy(id.data(), in_.data(), 32);
          in_.remove_prefix(32);
        }
        return {};
      }
      default:
        return "unknown mode " + std::to_string(m);
    }
  }

private:
  std::string read_bound(bound& out) {
    uint64_t encoded = 0;
    if (!get_varint(in_, encoded))
      return "truncated or oversized timestamp";
    if (encoded == 0) {
      out.timestamp = infinity;
    } else {
      // Saturates: once infinity, always infinity.
      uint64_t delta = encoded - 1;
      out.timestamp = last_timestamp_ > infinity - delta
                        ? infinity
                        : last_timestamp_ + delta;
    }
    last_timestamp_ = out.timestamp;
    uint64_t size = 0;
    if (!get_varint(in_, size))
      return "truncated or oversized id prefix length";
    if (size > 32)
      return "id prefix of " + std::to_string(size) + " bytes (max 32)";
    if (in_.size() < size)
      return "truncated id prefix";
    out.prefix_size = static_cast<uint8_t>(size);
    out.id = {};
    std::memcpy(out.id.data(), in_.data(), size);
    in_.remove_prefix(size);
    return {};
  }

  std::string_view in_;
  uint64_t last_timestamp_ = 0;
};

/// Negentropy versions occupy 0x60..0x6f; anything else is not negentropy.
bool is_version_byte(uint8_t b) {
  return b >= 0x60 && b <= 0x6f;
}

} // namespace

decode_status decode(std::string_view in, message& out, std::string& reason) {
  out.ranges.clear();
  if (in.empty()) {
    reason = "empty message";
    return decode_status::malformed;
  }
  auto version = static_cast<uint8_t>(in.front());
  if (!is_version_byte(version)) {
    reason = "not a negentropy message (first byte "
             + std::to_string(version) + ")";
    return decode_status::malformed;
  }
  if (version != protocol_version) {
    reason = "unsupported negentropy version "
             + std::to_string(version - 0x60) + " (we speak version 1)";
    return decode_status::unsupported_version;
  }
  body_decoder body{in.substr(1)};
  while (!body.empty()) {
    range r;
    if (auto failure = body.next(r); !failure.empty()) {
      reason = "range " + std::to_string(out.ranges.size()) + ": " + failure;
      out.ranges.clear();
      return decode_status::malformed;
    }
    out.ranges.push_back(std::move(r));
  }
  return decode_status::ok;
}

std::string encode_hex(std::string_view binary) {
  return to_hex(reinterpret_cast<const uint8_t*>(binary.data()), binary.size());
}

bool decode_hex(std::string_view hex, std::string& out) {
  if (hex.size() % 2 != 0)
    return false;
  out.resize(hex.size() / 2);
  return from_hex(hex, reinterpret_cast<uint8_t*>(out.data()), out.size());
}

// -- item set -----------------------------------------------------------------------

item_set::item_set(std::vector<item> items) : items_(std::move(items)) {
  // The store hands its items over in order: checking that costs one pass,
  // where sorting a million of them cost as much as reading them.
  auto out_of_order = std::adjacent_find(
    items_.begin(), items_.end(), [](const item& x, const item& y) { return !(x < y); });
  if (out_of_order != items_.end()) {
    std::sort(items_.begin(), items_.end());
    items_.erase(std::unique(items_.begin(), items_.end()), items_.end());
  }
  // A vector grown by push_back may be half empty; a relay keeps its sets
  // for whole sessions and counts their capacity against its budget. A
  // little spare room (the store reserves a few percent over its estimate)
  // stays: shrinking copies the whole set.
  if (items_.capacity() - items_.size() > items_.size() / 8)
    items_.shrink_to_fit();
}

size_t item_set::lower_bound(size_t first, size_t last, const bound& b) const {
  auto begin = items_.begin() + static_cast<ptrdiff_t>(first);
  auto end = items_.begin() + static_cast<ptrdiff_t>(last);
  auto i = std::partition_point(begin, end,
                                [&b](const item& x) { return below(x, b); });
  return static_cast<size_t>(i - items_.begin());
}

fingerprint item_set::digest(size_t first, size_t last) const {
  // The ids as 256-bit little-endian integers, summed in four 64-bit limbs.
  uint64_t sum[4] = {0, 0, 0, 0};
  for (size_t i = first; i < last; ++i) {
    const auto& id = items_[i].id;
    uint64_t carry = 0;
    for (size_t limb = 0; limb < 4; ++limb) {
      uint64_t x = 0;
      for (size_t byte = 0; byte < 8; ++byte)
        x |= static_cast<uint64_t>(id[limb * 8 + byte]) << (8 * byte);
      uint64_t s = sum[limb] + x;
      uint64_t next_carry = s < x ? 1 : 0;
      s += carry;
      next_carry |= (s < carry) ? 1 : 0;
      sum[limb] = s;
      carry = next_carry;
    }
  }
  std::string input;
  input.reserve(32 + 10);
  for (size_t limb = 0; limb < 4; ++limb)
    for (size_t byte = 0; byte < 8; ++byte)
      input.push_back(static_cast<char>((sum[limb] >> (8 * byte)) & 0xff));
  put_varint(input, last - first);
  auto hash = sha256(input);
  fingerprint out;
  std::copy_n(hash.begin(), fingerprint_size, out.begin());
  return out;
}

// -- reconciliation ---------------------------------------------------------------------

namespace {

/// The reference leaves this much room below the frame size limit for the
/// closing range.
constexpr size_t frame_margin = 200;

/// Without a frame size limit a range splits like the reference's: below
/// 32 items as ids, above as 16 fingerprints.
constexpr size_t buckets = 16;

/// What one fingerprint range takes in a message: its bound (a timestamp
/// delta of a few bytes, rarely an id prefix), the mode and the digest.
constexpr size_t fingerprint_cost = 24;

/// What an id list takes beyond its ids: a bound, the mode and the count.
constexpr size_t id_list_overhead = 12;

/// The most buckets one range splits into, however roomy the frame: a
/// range holding one difference would otherwise cost a whole frame of
/// fingerprints that all agree.
constexpr size_t max_buckets = 128;

/// The most ids a range goes as, however roomy the frame: beyond, a range
/// with a few new events (the usual periodic sync) would cost all its ids
/// where splitting it costs a round more and a few hundred bytes.
constexpr size_t max_id_list = 4 * max_buckets;

size_t effective_limit(size_t frame_size_limit) {
  return frame_size_limit == 0
           ? 0
           : std::max(frame_size_limit, min_frame_size_limit);
}

/// Describes [first, last) as one id list or as fingerprinted buckets.
///
/// `budget` is this range's share of the frame (0: no frame size limit).
/// The frame is shared out among the ranges that still differ, so every
/// one of them narrows in every round: a range whose ids fit its share goes
/// as ids and is settled next round; the others split into as many buckets
/// as their share pays for. With a fixed 16 the ranges of a large
/// difference outgrow the frame two rounds in, and the ones left out wait
/// a round each time: 15 rounds instead of 4 for 1% of 100,000.
void split_range(const item_set& items, size_t first, size_t last,
                 const bound& upper, encoder& enc, size_t budget) {
  auto n = last - first;
  const auto& all = items.items();
  size_t count;
  bool as_ids;
  if (budget == 0) {
    as_ids = n < 2 * buckets;
    count = buckets;
  } else {
    as_ids = n < 2 || (n <= max_id_list && n * 32 + id_list_overhead <= budget);
    count = std::clamp<size_t>(budget / fingerprint_cost, 2, max_buckets);
    count = std::min(count, n);
  }
  if (as_ids) {
    enc.add_id_list(upper, all.begin() + static_cast<ptrdiff_t>(first),
                    all.begin() + static_cast<ptrdiff_t>(last), n);
    return;
  }
  auto per_bucket = n / count;
  auto with_extra = n % count;
  auto current = first;
  for (size_t i = 0; i < count; ++i) {
    auto size = per_bucket + (i < with_extra ? 1 : 0);
    auto digest = items.digest(current, current + size);
    current += size;
    auto b = current == last ? upper
                             : minimal_bound(items[current - 1], items[current]);
    enc.add_fingerprint(b, digest);
  }
}

/// What the client learns from one id list.
void compare_ids(const item_set& items, size_t first, size_t last,
                 std::vector<bytes32> theirs, std::vector<bytes32>& have,
                 std::vector<bytes32>& need) {
  std::vector<bytes32> ours;
  ours.reserve(last - first);
  for (size_t i = first; i < last; ++i)
    ours.push_back(items[i].id);
  std::sort(ours.begin(), ours.end());
  std::sort(theirs.begin(), theirs.end());
  theirs.erase(std::unique(theirs.begin(), theirs.end()), theirs.end());
  std::set_difference(ours.begin(), ours.end(), theirs.begin(), theirs.end(),
                      std::back_inserter(have));
  std::set_difference(theirs.begin(), theirs.end(), ours.begin(), ours.end(),
                      std::back_inserter(need));
}

size_t varint_size(uint64_t x) {
  size_t n = 1;
  while (x >= 0x80) {
    x >>= 7;
    ++n;
  }
  return n;
}

/// What one query range is on our side, worked out before answering.
struct planned_range {
  /// Our items in the range end here (they begin where the previous ends).
  size_t upper = 0;
  /// Both sides already agree on it: a skip, a fingerprint equal to ours,
  /// or (for the initiator) an id list, which it settles without a reply.
  bool agreed = false;
};

/// The query read ahead, and the room each tail of it needs in summary.
///
/// Once a frame is full, the rest of the query is answered in summary: runs
/// of agreed ranges are skipped and each run of the others goes back as one
/// fingerprint of ours, for the peer to split next round. The reference
/// implementation answers the whole rest as one fingerprint up to infinity
/// instead; that reopens ranges the peer has settled, and the peer then
/// reports their ids a second time (nostr-tools' client does). Detailed
/// answers therefore stop while the summary of what follows still fits.
struct round_plan {
  std::vector<planned_range> ranges;
  /// summary_room[i]: the most the summary of ranges i.. takes.
  std::vector<size_t> summary_room;
  /// Fingerprints that differ: each is split in the answer.
  size_t open_splits = 0;
  /// What the responder's id lists take (it answers each of the peer's id
  /// lists with all of its own ids in that range).
  size_t id_answer_bytes = 0;

  round_plan(const item_set& items, const message& query, bool initiator) {
    const auto n = query.ranges.size();
    ranges.resize(n);
    size_t index = 0;
    for (size_t i = 0; i < n; ++i) {
      const auto& r = query.ranges[i];
      auto upper = items.lower_bound(index, items.size(), r.upper);
      bool agreed = false;
      switch (r.kind) {
        case mode::skip:
          agreed = true;
          break;
        case mode::fingerprint:
          agreed = r.digest == items.digest(index, upper);
          open_splits += agreed ? 0 : 1;
          break;
        case mode::id_list:
          agreed = initiator;
          if (!initiator)
            id_answer_bytes += 32 * (upper - index) + id_list_overhead;
          break;
      }
      ranges[i] = {upper, agreed};
      index = upper;
    }
    // Backwards: a run of like ranges costs the bound of its last range
    // (plus a fingerprint when open); a trailing agreed run costs nothing.
    summary_room.assign(n + 1, 0);
    size_t run_end = n;
    for (size_t i = n; i-- > 0;) {
      if (i + 1 == n || ranges[i + 1].agreed != ranges[i].agreed)
        run_end = i;
      bool trailing_skip = ranges[i].agreed && run_end + 1 == n;
      summary_room[i] = summary_room[run_end + 1]
                        + (trailing_skip ? 0
                                         : written_size(query.ranges[run_end],
                                                        ranges[i].agreed));
    }
  }

  /// The most a summary range ending at `r`'s bound takes: a timestamp
  /// delta no larger than the timestamp, the prefix, the mode and, when
  /// open, a fingerprint.
  static size_t written_size(const range& r, bool agreed) {
    auto timestamp = r.upper.timestamp == infinity ? 0 : r.upper.timestamp + 1;
    return varint_size(timestamp) + 1 + r.upper.prefix_size + 1
           + (agreed ? 0 : fingerprint_size);
  }
};

/// The largest range a summary writes: a bound (10-byte timestamp varint,
/// length, 32-byte prefix), the mode and a fingerprint. A summary keeps room
/// for two beyond its plan: the run it takes over and the closing one.
constexpr size_t max_summary_range = 10 + 1 + 32 + 1 + fingerprint_size;

/// Writes the summary described at `round_plan`.
class summary {
public:
  /// `written` is the item index of the last bound in `enc`; `index` and
  /// `upper` say where the query ranges read so far end.
  summary(const item_set& items, const round_plan& plan, encoder& enc,
          size_t limit, size_t written, size_t index, const bound& upper)
    : items_(items),
      plan_(plan),
      enc_(enc),
      limit_(limit),
      written_(written),
      index_(index),
      upper_(upper) {
  }

  /// The space from `written` up to `index` is agreed (a pending skip).
  void agreed_so_far() {
    run_ = run::agreed;
  }

  /// The space from `written` up to `index` is still open.
  void open_so_far() {
    run_ = run::open;
  }

  /// Summarises `query.ranges` from `first` on. The initiator settles the
  /// id lists among them as it goes.
  std::string finish(const message& query, size_t first, bool initiator,
                     std::vector<bytes32>* have, std::vector<bytes32>* need) {
    for (size_t i = first; i < query.ranges.size(); ++i) {
      const auto& r = query.ranges[i];
      const auto& planned = plan_.ranges[i];
      if (initiator && r.kind == mode::id_list)
        compare_ids(items_, index_, planned.upper, r.ids, *have, *need);
      auto wanted = planned.agreed ? run::agreed : run::open;
      if (run_ != wanted) {
        if (!close_run())
          return to_infinity();
        run_ = wanted;
      }
      index_ = planned.upper;
      upper_ = r.upper;
    }
    // A trailing agreed run is implicit.
    if (run_ == run::open && !close_run())
      return to_infinity();
    return enc_.take();
  }

private:
  enum class run { none, agreed, open };

  /// Writes the pending run, which ends at `upper_`, if that leaves room
  /// for a closing fingerprint.
  bool close_run() {
    if (run_ == run::none)
      return true;
    if (enc_.size() + 2 * max_summary_range > limit_)
      return false;
    if (run_ == run::agreed)
      enc_.add_skip(upper_);
    else
      enc_.add_fingerprint(upper_, items_.digest(written_, index_));
    written_ = index_;
    run_ = run::none;
    return true;
  }

  /// Everything not yet written, as one fingerprint up to infinity: only
  /// when a peer's query is too fragmented to summarise within our frame.
  std::string to_infinity() {
    enc_.add_fingerprint(bound{infinity, 0, {}},
                         items_.digest(written_, items_.size()));
    return enc_.take();
  }

  const item_set& items_;
  const round_plan& plan_;
  encoder& enc_;
  size_t limit_;
  size_t written_;
  size_t index_;
  bound upper_;
  run run_ = run::none;
};

/// One round of either side: answers every range of `query`. The initiator
/// records have/need for id lists and skips them; the responder answers an
/// id list with its own ids. With a frame size limit, detailed answers stop
/// where the rest still fits in summary (see `round_plan`). `split_room` is
/// the part of the frame the splits of differing ranges share out.
std::string answer(const item_set& items, size_t limit, size_t split_room,
                   const message& query, bool initiator,
                   std::vector<bytes32>* have, std::vector<bytes32>* need) {
  const round_plan plan{items, query, initiator};
  // Each differing range's share, after the id lists and the skips between
  // the ranges (see `split_range`).
  size_t share = 0;
  if (limit != 0 && plan.open_splits > 0) {
    auto fixed = frame_margin + plan.id_answer_bytes + 8 * plan.open_splits;
    share = fixed < split_room
              ? std::max<size_t>((split_room - fixed) / plan.open_splits, 1)
              : 1;
  }
  // The room kept for summarising ranges i.. (none without a limit). At
  // most half the frame: a query too fragmented to summarise in it (a peer
  // with a much larger frame) still gets half a frame of detailed answers
  // and the rest as one fingerprint to infinity. Reserving all of it would
  // answer nothing in detail and hand the peer back its own query, round
  // after round.
  auto reserved = [&](size_t i) {
    return limit == 0 ? 0
                      : std::min(frame_margin + plan.summary_room[i], limit / 2);
  };
  encoder enc;
  bound prev_bound;
  size_t prev_index = 0;
  // Skips are merged and only written before a range that is not skipped;
  // trailing skips are implicit. `written` is the item index of the last
  // bound written, where a pending skip begins.
  bool skip = false;
  size_t written = 0;
  for (size_t i = 0; i < query.ranges.size(); ++i) {
    const auto& r = query.ranges[i];
    auto mark = enc.mark();
    bool skip_pending = skip;
    auto written_before = written;
    auto flush_skip = [&] {
      if (skip) {
        skip = false;
        enc.add_skip(prev_bound);
      }
    };
    auto lower = prev_index;
    auto upper = plan.ranges[i].upper;
    switch (r.kind) {
      case mode::skip:
        skip = true;
        break;
      case mode::fingerprint:
        if (!plan.ranges[i].agreed) {
          flush_skip();
          split_range(items, lower, upper, r.upper, enc, share);
          written = upper;
        } else {
          skip = true;
        }
        break;
      case mode::id_list:
        if (initiator) {
          compare_ids(items, lower, upper, r.ids, *have, *need);
          skip = true;
          break;
        }
        {
          flush_skip();
          // As many of our ids as fit; the rest of this range stays open
          // in the summary, from the first id left out.
          auto used = enc.size() + 64 + reserved(i + 1);
          auto room = limit == 0 ? upper - lower
                                 : (used >= limit ? 0 : (limit - used) / 32);
          auto cut = lower + std::min(upper - lower, room);
          const auto& all = items.items();
          auto first = all.begin() + static_cast<ptrdiff_t>(lower);
          auto last = all.begin() + static_cast<ptrdiff_t>(cut);
          if (cut == upper) {
            enc.add_id_list(r.upper, first, last, cut - lower);
            written = upper;
          } else {
            enc.add_id_list(bound::at(items[cut]), first, last, cut - lower);
            summary rest{items, plan, enc, limit, cut, upper, r.upper};
            rest.open_so_far();
            return rest.finish(query, i + 1, initiator, have, need);
          }
        }
        break;
    }
    if (limit != 0 && enc.size() + reserved(i + 1) > limit) {
      enc.rollback(mark);
      summary rest{items, plan, enc, limit, written_before, lower, prev_bound};
      if (skip_pending)
        rest.agreed_so_far();
      return rest.finish(query, i, initiator, have, need);
    }
    prev_index = upper;
    prev_bound = r.upper;
  }
  return enc.take();
}

} // namespace

server::server(item_set_ptr items, size_t frame_size_limit)
  : items_(std::move(items)),
    frame_size_limit_(effective_limit(frame_size_limit)) {
}

std::string server::reconcile(std::string_view query,
                              std::string& response) const {
  message msg;
  std::string reason;
  switch (decode(query, msg, reason)) {
    case decode_status::ok:
      break;
    case decode_status::unsupported_version:
      response.assign(1, static_cast<char>(protocol_version));
      return {};
    case decode_status::malformed:
      return reason;
  }
  response = answer(*items_, frame_size_limit_, frame_size_limit_, msg, false,
                    nullptr, nullptr);
  return {};
}

client::client(item_set_ptr items, size_t frame_size_limit)
  : items_(std::move(items)),
    frame_size_limit_(effective_limit(frame_size_limit)) {
}

std::string client::initiate() {
  initiated_ = true;
  encoder enc;
  // The first query splits like the reference's: identical sets, the
  // common case, settle in one round of 16 fingerprints.
  split_range(*items_, 0, items_->size(), bound{infinity, 0, {}}, enc, 0);
  return enc.take();
}

std::string client::reconcile(std::string_view response, round& out) {
  out.next.reset();
  out.have.clear();
  out.need.clear();
  if (!initiated_)
    return "reconcile before initiate";
  if (done_)
    return "reconciliation is already complete";
  message msg;
  std::string reason;
  if (decode(response, msg, reason) != decode_status::ok)
    return reason;
  ++rounds_;
  // Our splits fill no more than the largest answer seen: a relay that
  // answers in small frames could not summarise a query fragmented into a
  // much larger one, and every round would be spent on the summary.
  largest_answer_ = std::max(largest_answer_, response.size());
  auto split_room = std::min(frame_size_limit_,
                             std::max(largest_answer_, min_frame_size_limit));
  auto next = answer(*items_, frame_size_limit_, split_room, msg, true, &out.have,
                     &out.need);
  auto seen_before = [this](const bytes32& id) {
    return !reported_.insert(id).second;
  };
  out.have.erase(std::remove_if(out.have.begin(), out.have.end(), seen_before),
                 out.have.end());
  out.need.erase(std::remove_if(out.need.begin(), out.need.end(), seen_before),
                 out.need.end());
  if (next.size() == 1)
    done_ = true;
  else
    out.next = std::move(next);
  return {};
}

} // namespace ferry::nostr::negentropy
