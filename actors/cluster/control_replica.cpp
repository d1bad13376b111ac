#include "actors/cluster/control_replica.hpp"

#include <algorithm>

namespace ferry {

control_replica::control_replica(std::string self_name)
  : self_(std::move(self_name)) {
  // nop
}

void control_replica::load(std::vector<cluster::control_record> stored) {
  for (auto& r : stored) {
    key k{r.kind, r.id};
    records_[std::move(k)] = std::move(r);
  }
}

std::vector<cluster::control_record>
control_replica::observe_local(const std::string& kind,
                               const std::map<std::string, std::string>& current) {
  std::vector<cluster::control_record> changed;
  auto edit = [&](cluster::control_record& r, bool deleted, std::string body) {
    r.deleted = deleted;
    r.body = std::move(body);
    r.version.clock.increment(self_);
    // Folded like every other version here: on a member the cluster forgot
    // and that came back, its own counter too (cluster::control_message).
    for (auto& name : forgotten_)
      r.version.clock.fold(name);
    r.version.digest = cluster::content_digest(r.deleted, r.body);
    changed.push_back(r);
  };
  for (auto& [id, body] : current) {
    auto digest = cluster::content_digest(false, body);
    auto i = records_.find(key{kind, id});
    if (i == records_.end()) {
      cluster::control_record r;
      r.kind = kind;
      r.id = id;
      edit(records_[key{kind, id}] = std::move(r), false, body);
      continue;
    }
    if (i->second.deleted || i->second.version.digest != digest)
      edit(i->second, false, body);
  }
  for (auto& [k, r] : records_)
    if (k.first == kind && !r.deleted && current.count(k.second) == 0)
      edit(r, true, {});
  return changed;
}

control_replica::merge_outcome
control_replica::merge(const std::vector<cluster::control_record>& incoming,
                       int64_t now) {
  merge_outcome out;
  for (auto in : incoming) {
    for (auto& name : forgotten_)
      in.version.clock.fold(name);
    auto i = records_.find(key{in.kind, in.id});
    if (i == records_.end()) {
      records_[key{in.kind, in.id}] = in;
      out.changed.push_back(in);
      continue;
    }
    auto& stored = i->second;
    auto settled = cluster::resolve(stored.version, in.version);
    if (settled.result == stored.version)
      continue;
    // The same content reached independently (every member read the same
    // [[sync.server]] at its first start): one history now, no conflict.
    auto same_content = in.version.digest == stored.version.digest;
    if (settled.conflict && !same_content) {
      control_conflict c;
      c.kind = in.kind;
      c.id = in.id;
      auto incoming_wins = settled.result.digest == in.version.digest;
      c.kept = incoming_wins ? in : stored;
      c.dropped = incoming_wins ? stored : in;
      c.detected_at = now;
      out.conflicts.push_back(c);
      conflicts_.push_back(std::move(c));
      if (conflicts_.size() > max_conflicts)
        conflicts_.erase(conflicts_.begin());
    }
    auto content_changes = settled.result.digest != stored.version.digest;
    if (content_changes) {
      stored.deleted = in.deleted;
      stored.body = in.body;
    }
    stored.version = settled.result;
    if (content_changes)
      out.changed.push_back(stored);
    else
      out.restamped.push_back(stored);
  }
  return out;
}

std::vector<cluster::control_record>
control_replica::forget(const std::set<std::string>& names) {
  std::vector<cluster::control_record> restamped;
  if (names == forgotten_)
    return restamped;
  forgotten_ = names;
  for (auto& [k, r] : records_) {
    auto before = r.version.clock;
    for (auto& name : forgotten_)
      r.version.clock.fold(name);
    if (r.version.clock != before)
      restamped.push_back(r);
  }
  return restamped;
}

std::vector<cluster::control_record> control_replica::all() const {
  std::vector<cluster::control_record> result;
  result.reserve(records_.size());
  for (auto& [k, r] : records_)
    result.push_back(r);
  return result;
}

const cluster::control_record*
control_replica::find(const std::string& kind, const std::string& id) const {
  auto i = records_.find(key{kind, id});
  return i == records_.end() ? nullptr : &i->second;
}

} // namespace ferry
