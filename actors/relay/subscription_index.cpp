#include "actors/relay/subscription_index.hpp"

#include <algorithm>
#include <tuple>

namespace ferry {

namespace {

/// The tag condition a filter is filed under: the one with the fewest
/// values, which usually names the rarest events.
const nostr::tag_condition& narrowest_tag(const nostr::filter& f) {
  return *std::min_element(f.tags.begin(), f.tags.end(),
                           [](const auto& x, const auto& y) {
                             return x.values.size() < y.values.size();
                           });
}

std::string tag_key(char letter, const std::string& value) {
  std::string key;
  key.reserve(1 + value.size());
  key.push_back(letter);
  key += value;
  return key;
}

} // namespace

bool subscription_index::add(caf::actor_id session, const std::string& sub_id,
                             filter_set_ptr filters) {
  auto [i, fresh] = subscriptions_.try_emplace(key{session, sub_id});
  if (fresh) {
    i->second = std::make_unique<subscription>();
    i->second->session = session;
    i->second->sub_id = sub_id;
  } else {
    file(*i->second, false);
  }
  i->second->filters = std::move(filters);
  file(*i->second, true);
  return fresh;
}

bool subscription_index::remove(caf::actor_id session, const std::string& sub_id) {
  auto i = subscriptions_.find(key{session, sub_id});
  if (i == subscriptions_.end())
    return false;
  file(*i->second, false);
  subscriptions_.erase(i);
  return true;
}

size_t subscription_index::remove_session(caf::actor_id session) {
  auto first = subscriptions_.lower_bound(key{session, std::string{}});
  auto last = first;
  size_t n = 0;
  for (; last != subscriptions_.end() && last->first.first == session; ++last, ++n)
    file(*last->second, false);
  subscriptions_.erase(first, last);
  return n;
}

template <class Map, class Key>
void subscription_index::update(Map& map, const Key& k, const posting& p, bool add) {
  if (add) {
    map[k].push_back(p);
    return;
  }
  auto i = map.find(k);
  if (i == map.end())
    return;
  unfile(i->second, p);
  if (i->second.empty())
    map.erase(i);
}

void subscription_index::unfile(postings& list, const posting& p) {
  auto i = std::find_if(list.begin(), list.end(), [&](const posting& x) {
    return x.sub == p.sub && x.filter == p.filter;
  });
  if (i != list.end()) {
    *i = list.back();
    list.pop_back();
  }
}

void subscription_index::file(subscription& sub, bool add) {
  for (const auto& f : *sub.filters) {
    posting p{&sub, &f};
    // An empty list matches nothing: such a filter is filed under no key.
    if (f.ids) {
      for (const auto& id : *f.ids)
        update(by_id_, id, p, add);
    } else if (f.authors) {
      for (const auto& author : *f.authors)
        update(by_author_, author, p, add);
    } else if (!f.tags.empty()) {
      const auto& condition = narrowest_tag(f);
      for (const auto& value : condition.values)
        update(by_tag_, tag_key(condition.letter, value), p, add);
    } else if (f.kinds) {
      for (auto kind : *f.kinds)
        update(by_kind_, kind, p, add);
    } else if (add) {
      unindexed_.push_back(p);
    } else {
      unfile(unindexed_, p);
    }
  }
}

void subscription_index::collect(const postings& list, const nostr::event& ev) {
  for (const auto& p : list)
    if (p.sub->matched_in != match_round_ && p.filter->matches(ev)) {
      p.sub->matched_in = match_round_;
      matched_.push_back(p.sub);
    }
}

void subscription_index::match(const nostr::event& ev, const match_handler& on_match) {
  ++match_round_;
  matched_.clear();
  auto look_up = [&](const auto& map, const auto& k) {
    auto i = map.find(k);
    if (i != map.end())
      collect(i->second, ev);
  };
  look_up(by_id_, ev.id);
  look_up(by_author_, ev.pubkey);
  look_up(by_kind_, ev.kind);
  if (!by_tag_.empty())
    for (const auto& t : ev.tags) {
      if (t.size() < 2 || t[0].size() != 1)
        continue;
      tag_key_.assign(1, t[0][0]);
      tag_key_ += t[1];
      look_up(by_tag_, tag_key_);
    }
  collect(unindexed_, ev);
  if (matched_.empty())
    return;
  std::sort(matched_.begin(), matched_.end(), [](const subscription* x, const subscription* y) {
    return std::tie(x->session, x->sub_id) < std::tie(y->session, y->sub_id);
  });
  for (size_t i = 0; i < matched_.size();) {
    auto session = matched_[i]->session;
    std::vector<std::string> sub_ids;
    for (; i < matched_.size() && matched_[i]->session == session; ++i)
      sub_ids.push_back(matched_[i]->sub_id);
    on_match(session, std::move(sub_ids));
  }
}

} // namespace ferry
