#pragma once

#include "messages/nostr/id_hash.hpp"
#include "messages/relay.hpp"

#include <caf/actor_addr.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ferry {

/// The live subscriptions of the hub, indexed by what their filters ask for,
/// so that an event is checked only against filters that can match it
/// instead of against every subscription (bench_fanout: 1,000 subscribers
/// cost the hub a thousand filter checks per published event).
///
/// Each filter is filed under one of its conditions, the most selective
/// present: its ids, else its authors, else the tag condition with the
/// fewest values, else its kinds; a filter with none of them (only
/// since/until, or nothing) is checked for every event. An event looks up
/// its id, its author, its kind and each of its single-letter tags, and
/// every filter found that way is checked in full.
class subscription_index {
public:
  /// The subscriptions of one session that an event matches, sorted.
  using match_handler
    = std::function<void(caf::actor_id session, std::vector<std::string> sub_ids)>;

  /// Opens subscription `sub_id` of `session`, or replaces its filters.
  /// @returns true when the subscription is new.
  bool add(caf::actor_id session, const std::string& sub_id,
           filter_set_ptr filters);

  /// Closes one subscription. @returns whether it was open.
  bool remove(caf::actor_id session, const std::string& sub_id);

  /// Closes every subscription of `session`. @returns how many were open.
  size_t remove_session(caf::actor_id session);

  /// Calls `on_match` once for every session with at least one subscription
  /// whose filters match `ev`, naming those subscriptions.
  void match(const nostr::event& ev, const match_handler& on_match);

  /// Open subscriptions.
  size_t size() const {
    return subscriptions_.size();
  }

private:
  struct subscription {
    caf::actor_id session = 0;
    std::string sub_id;
    filter_set_ptr filters;
    /// The last `match` call that found this subscription: one event names
    /// it once, however many of its filters and index keys lead to it.
    uint64_t matched_in = 0;
  };

  /// One filter of one subscription, filed under one index key.
  struct posting {
    subscription* sub;
    const nostr::filter* filter;
  };

  using postings = std::vector<posting>;

  /// Files (or unfiles, `add == false`) every filter of `sub`.
  void file(subscription& sub, bool add);

  /// Files `p` under key `k` of `map`, or unfiles it (dropping the key
  /// once nothing is filed under it).
  template <class Map, class Key>
  static void update(Map& map, const Key& k, const posting& p, bool add);

  /// Removes `p` from `list`.
  static void unfile(postings& list, const posting& p);

  /// Checks the filters in `list` against `ev` and collects the newly
  /// matched subscriptions.
  void collect(const postings& list, const nostr::event& ev);

  using key = std::pair<caf::actor_id, std::string>;
  std::map<key, std::unique_ptr<subscription>> subscriptions_;

  std::unordered_map<nostr::bytes32, postings, nostr::id_hash> by_id_;
  std::unordered_map<nostr::bytes32, postings, nostr::id_hash> by_author_;
  /// Keyed by the tag letter followed by the value.
  std::unordered_map<std::string, postings, nostr::seeded_string_hash> by_tag_;
  std::unordered_map<uint32_t, postings> by_kind_;
  postings unindexed_;

  uint64_t match_round_ = 0;
  std::vector<subscription*> matched_;
  /// Reused for tag lookups, so most events allocate no key.
  std::string tag_key_;
};

} // namespace ferry
