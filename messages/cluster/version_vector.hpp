#pragma once

#include "messages/nostr/hex.hpp"

#include <caf/error.hpp>
#include <caf/meta/load_callback.hpp>
#include <caf/meta/type_name.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>

namespace ferry::cluster {

/// How two version vectors relate.
enum class causal_order : uint8_t {
  /// The first happened before the second: the second saw all of it.
  before,
  /// The first happened after the second.
  after,
  /// Same history.
  equal,
  /// Neither saw all of the other: two edits made independently.
  concurrent,
};

/// @relates causal_order
std::string to_string(causal_order x);

/// A version vector for one replicated control-plane record: one counter per
/// cluster member, counting that member's edits of the record.
///
/// Members that left are folded away once the cluster has forgotten them, so
/// a vector stays as small as the current membership. Folding member X moves
/// its counter into `retired`, one component that stands for every folded
/// member, so the vector's `total` never changes.
///
/// The folding rule. Removing a component on which two vectors agree changes
/// nothing about how they compare; removing one on which they differ can turn
/// a concurrent pair into an ordered one, or an ordered pair into an equal
/// one. Therefore:
///   1. A node folds a member away only once it is settled: it has left (or
///      been declared dead) and stayed away for longer than the cluster's
///      forget period, so it makes no further edits and every version still
///      in circulation carries its final counter. A node that was away for
///      longer than that period takes its peers' records wholesale instead of
///      merging its own back in.
///   2. A node folds every vector it compares with the same set of forgotten
///      members: its stored versions and every incoming version before the
///      comparison (`fold` is idempotent and a no-op for absent members).
///   3. Nodes forget a member at slightly different times, and a node that
///      restarted knows of no forgotten member at all, so a folded vector
///      meets unfolded ones. `align` settles such a pair from the two
///      vectors alone: where one vector's `retired` exceeds the other's by
///      exactly the counters of members only the other has, it folded
///      them, and the other is folded the same way before the comparison.
/// Under these rules two nodes classify any pair of versions identically,
/// whichever of them has already forgotten the member. And even where (1)
/// is broken (a node comes back after the forget period and merges anyway),
/// `resolve` still picks the same record on every node: its winner depends
/// only on `total` and on the content digest, and folding changes neither.
class version_vector {
public:
  using counter_map = std::map<std::string, uint64_t, std::less<>>;

  /// Counts one more edit by `member`.
  void increment(std::string_view member);

  /// Sets the counter of `member` (zero removes its entry), for vectors read
  /// back from text.
  void set(std::string_view member, uint64_t counter);

  /// The counter of `member`; zero for members without an entry.
  uint64_t get(std::string_view member) const;

  /// Folds `member` away: its counter moves into `retired`.
  void fold(std::string_view member);

  /// Sets the sum of the folded members' counters, for vectors read back
  /// from text.
  void set_retired(uint64_t retired) {
    retired_ = retired;
  }

  /// Counters of the members not folded away, by name. Never holds a zero.
  const counter_map& counters() const {
    return counters_;
  }

  /// Sum of the counters of every member folded away.
  uint64_t retired() const {
    return retired_;
  }

  /// Every edit this vector accounts for, folded ones included; strictly
  /// grows along happened-before.
  uint64_t total() const;

  /// Structural equality; the same as `compare(*this, other) == equal`,
  /// because no zero counter is ever kept.
  bool operator==(const version_vector& other) const {
    return retired_ == other.retired_ && counters_ == other.counters_;
  }

  bool operator!=(const version_vector& other) const {
    return !(*this == other);
  }

  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f,
                                                 version_vector& x) {
    // A peer may send explicit zeros; dropping them keeps equality
    // structural.
    auto drop_zeros = caf::meta::load_callback([&x]() -> caf::error {
      x.drop_zero_counters();
      return caf::none;
    });
    return f(caf::meta::type_name("version_vector"), x.counters_, x.retired_,
             drop_zeros);
  }

private:
  friend version_vector merge(const version_vector& a, const version_vector& b);

  void drop_zero_counters();

  counter_map counters_;
  uint64_t retired_ = 0;
};

/// Compares component by component; `retired` counts as one more component.
/// @relates version_vector
causal_order compare(const version_vector& a, const version_vector& b);

/// The least upper bound: each component's maximum.
/// @relates version_vector
version_vector merge(const version_vector& a, const version_vector& b);

/// Brings `a` and `b` to the same folding (rule 3 above): when `b.retired()`
/// exceeds `a.retired()`, the first set of members only `a` has (at most
/// 16 are tried) whose counters add up to exactly the difference is folded
/// in `a` (`b` folded them), and the same the other way round; otherwise
/// both stay as they are. For a member both carry with the same counter,
/// `compare(align(fold(a, m), b))` is `compare(fold(a, m), fold(b, m))`.
/// A pure function of the pair, so every node aligns it the same way;
/// `compare` of the results is what `resolve` decides on.
/// @relates version_vector
std::pair<version_vector, version_vector> align(const version_vector& a,
                                                const version_vector& b);

/// One version of a replicated record: its history and the SHA-256 of its
/// canonical content.
struct record_version {
  version_vector clock;
  nostr::bytes32 digest{};

  bool operator==(const record_version& other) const {
    return clock == other.clock && digest == other.digest;
  }

  bool operator!=(const record_version& other) const {
    return !(*this == other);
  }
};

/// @relates record_version
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, record_version& x) {
  return f(caf::meta::type_name("record_version"), x.clock, x.digest);
}

/// The conflict rule's total order: true when `a` beats `b`. The version
/// that accounts for more edits (`total`) wins; on a tie, the greater content
/// digest (compared as bytes); on a tie of both (the same content reached by
/// different histories), the greater vector in lexicographic order of
/// (name, counter) pairs, then `retired`. A version that happened after
/// another always beats it, because `total` grows along happened-before.
/// @relates record_version
bool beats(const record_version& a, const record_version& b);

/// What a node does with an incoming version of a record it stores.
struct resolution {
  /// How the incoming version relates to the stored one.
  causal_order order = causal_order::equal;
  /// Two different contents that neither side saw the other of: concurrent
  /// vectors, or (only when the folding rule was broken) equal vectors with
  /// different digests. Report it. In the second case the result keeps that
  /// vector, so the losing version, met again, is reported again (and loses
  /// again).
  bool conflict = false;
  /// What to store: the incoming version when it happened after; the stored
  /// one when it is the same or newer; on a conflict, the content of the
  /// version that `beats` the other under the merge of both vectors, so the
  /// result dominates both and every node stores the same thing.
  record_version result;
};

/// Applies the rules above to the two clocks as `align` leaves them.
/// `resolve(x, y).result == resolve(y, x).result` for every pair: nodes that
/// receive the two versions in either order store the same record.
/// @relates record_version
resolution resolve(const record_version& stored,
                   const record_version& incoming);

} // namespace ferry::cluster
