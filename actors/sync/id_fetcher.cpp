#include "actors/sync/id_fetcher.hpp"

#include <algorithm>
#include <cctype>

namespace ferry {

bool refuses_for_subscriptions(std::string_view reason) {
  std::string text{reason};
  for (auto& c : text)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text.find("subscription") != std::string::npos
         || text.find("concurrent") != std::string::npos;
}

id_fetcher::id_fetcher(options opts) : opts_(std::move(opts)) {
  opts_.batch_size = std::max<size_t>(opts_.batch_size, 1);
  opts_.max_requests = std::max<size_t>(opts_.max_requests, 1);
  batch_size_ = opts_.batch_size;
  max_requests_ = opts_.max_requests;
  if (opts_.claims)
    owner_ = opts_.claims->new_owner();
}

id_fetcher::~id_fetcher() {
  for (const auto& [sub_id, req] : open_)
    release(req.pending);
  release(unsettled_);
}

void id_fetcher::release(const id_set& ids) {
  if (opts_.claims && !ids.empty())
    opts_.claims->release({ids.begin(), ids.end()}, owner_);
}

void id_fetcher::settled(const nostr::bytes32& id) {
  if (unsettled_.erase(id) != 0)
    opts_.claims->release({id}, owner_);
}

void id_fetcher::look_again_at_deferred() {
  const auto now = std::chrono::steady_clock::now();
  size_t kept = 0;
  for (size_t i = 0; i < deferred_.size(); ++i) {
    const auto [id, since] = deferred_[i];
    // The claim first: it is in memory, the store lookup is not, and a
    // waiting connection looks every few tens of milliseconds.
    const bool claimed = opts_.claims->held_by_other(id, owner_);
    if (claimed && now - since < opts_.patience) {
      deferred_[kept++] = deferred_[i];
    } else if (opts_.held && opts_.held(id)) {
      ++fetched_elsewhere;
    } else {
      if (claimed)
        overdue_.insert(id);
      queue_.push_back(id);
    }
  }
  deferred_.resize(kept);
}

void id_fetcher::add(const std::vector<nostr::bytes32>& ids) {
  for (const auto& id : ids)
    if (known_.insert(id)) {
      queue_.push_back(id);
      ++wanted;
    }
}

bool id_fetcher::take(const nostr::bytes32& id) {
  if (!opts_.claims)
    return true;
  // Another connection may have fetched it since it was queued here.
  if (opts_.held && opts_.held(id)) {
    ++fetched_elsewhere;
    return false;
  }
  if (overdue_.erase(id) == 0 && !opts_.claims->try_claim(id, owner_)) {
    deferred_.emplace_back(id, std::chrono::steady_clock::now());
    return false;
  }
  return true;
}

std::string id_fetcher::request_for(const std::vector<nostr::bytes32>& batch) {
  auto sub_id = opts_.sub_prefix + std::to_string(next_sub_++);
  const auto n = batch.size();
  request req;
  req.size = n;
  req.sent_at_look = looks_;
  req.pending.reserve(n);
  std::string ids;
  ids.reserve(n * 67);
  for (size_t i = 0; i < n; ++i) {
    if (i > 0)
      ids += ',';
    ids += '"';
    ids += nostr::to_hex(batch[i]);
    ids += '"';
    req.pending.insert(batch[i]);
  }
  // The limit keeps relays that apply a default limit to every filter
  // from cutting the batch short.
  std::string frame = "[\"REQ\",\"" + sub_id + "\"";
  auto ids_filter = "{\"ids\":[" + ids + "],\"limit\":" + std::to_string(n);
  if (opts_.within.empty()) {
    frame += "," + ids_filter + "}";
  } else {
    for (auto f : opts_.within) {
      f.ids.reset();
      f.limit.reset();
      auto conditions = nostr::to_json(f); // "{...}" without ids and limit
      frame += "," + ids_filter
               + (conditions.size() > 2 ? "," + conditions.substr(1) : "}");
    }
  }
  frame += "]";
  open_.emplace(std::move(sub_id), std::move(req));
  ++requests;
  return frame;
}

std::vector<std::string> id_fetcher::fill() {
  std::vector<std::string> frames;
  if (!alone_sub_.empty())
    return frames;
  if (queue_.empty() && retry_.empty() && !deferred_.empty()
      && open_.size() < max_requests_)
    look_again_at_deferred();
  while ((!retry_.empty() || !queue_.empty()) && open_.size() < max_requests_) {
    std::vector<nostr::bytes32> batch;
    if (!retry_.empty()) {
      for (const auto& id : retry_.front())
        if (take(id))
          batch.push_back(id);
      retry_.pop_front();
    } else {
      while (!queue_.empty() && batch.size() < batch_size_) {
        auto id = queue_.front();
        queue_.pop_front();
        if (take(id))
          batch.push_back(id);
      }
    }
    if (!batch.empty())
      frames.push_back(request_for(batch));
  }
  while (open_.empty() && queue_.empty() && retry_.empty() && !alone_.empty()) {
    auto id = alone_.front();
    alone_.pop_front();
    if (take(id)) {
      alone_sub_ = opts_.sub_prefix + std::to_string(next_sub_); // request_for's
      frames.push_back(request_for({id}));
    }
  }
  return frames;
}

bool id_fetcher::owns(std::string_view sub_id) const {
  return sub_id.substr(0, opts_.sub_prefix.size()) == opts_.sub_prefix;
}

bool id_fetcher::on_event(std::string_view sub_id, const nostr::bytes32& id) {
  auto i = open_.find(sub_id);
  if (i != open_.end())
    ++answers_;
  if (i == open_.end() || i->second.pending.erase(id) == 0) {
    ++unexpected;
    return false;
  }
  ++i->second.delivered;
  ++delivered;
  if (opts_.claims)
    unsettled_.insert(id);
  return true;
}

std::string id_fetcher::on_eose(std::string_view sub_id) {
  auto i = open_.find(sub_id);
  if (i == open_.end())
    return {};
  ++answers_;
  if (sub_id == alone_sub_)
    alone_sub_.clear();
  auto& req = i->second;
  largest_answered_ = std::max(largest_answered_, req.size);
  // Those delivered stay claimed until the owner settles them.
  release(req.pending);
  if (req.delivered > 0)
    queue_.insert(queue_.end(), req.pending.begin(), req.pending.end());
  else
    missing += req.pending.size();
  open_.erase(i);
  return "[\"CLOSE\",\"" + std::string{sub_id} + "\"]";
}

id_fetcher::closed_outcome id_fetcher::on_closed(std::string_view sub_id,
                                                std::string_view reason) {
  auto i = open_.find(sub_id);
  if (i == open_.end())
    return closed_outcome::not_ours;
  ++answers_;
  closed_reason_ = std::string{reason};
  auto starts = [reason](std::string_view prefix) {
    return reason.substr(0, prefix.size()) == prefix;
  };
  const size_t size = i->second.size;
  std::vector<nostr::bytes32> left(i->second.pending.begin(),
                                   i->second.pending.end());
  release(i->second.pending);
  open_.erase(i);
  if (sub_id == alone_sub_)
    alone_sub_.clear();
  // The REQs of ours still open are those the relay holds.
  const size_t others_open = open_.size();
  const bool prefixed_stop = starts("rate-limited:") || starts("auth-required:");
  if (!prefixed_stop && refuses_for_subscriptions(reason)) {
    if (!left.empty())
      retry_.emplace_front(std::move(left));
    if (others_open == 0)
      return closed_outcome::stop;
    max_requests_ = std::min(max_requests_, others_open);
    return closed_outcome::retrying;
  }
  closed_outcome outcome;
  if (prefixed_stop)
    outcome = closed_outcome::stop;
  else if (size > 1)
    outcome = closed_outcome::retrying;
  else if (starts("blocked:") || starts("restricted:") || starts("invalid:"))
    outcome = closed_outcome::refused;
  else
    outcome = closed_outcome::stop;
  if (outcome == closed_outcome::refused && others_open > 0) {
    alone_.insert(alone_.end(), left.begin(), left.end());
    return closed_outcome::retrying;
  }
  if (outcome == closed_outcome::refused) {
    refused += left.size();
    return outcome;
  }
  if (outcome == closed_outcome::retrying) {
    // No REQ this large has been answered: the relay may cap the ids of a
    // filter, so the REQs still to come are smaller too.
    if (largest_answered_ < size)
      batch_size_ = std::min(batch_size_, std::max<size_t>(size / 2, 1));
    // Halves in REQs of their own, asked for before anything queued: a
    // relay refusing one event of many isolates it in a few steps.
    const auto half = left.size() / 2;
    if (half > 0) {
      retry_.emplace_front(left.begin() + half, left.end());
      retry_.emplace_front(left.begin(), left.begin() + half);
    } else if (!left.empty()) {
      retry_.emplace_front(std::move(left));
    }
    return outcome;
  }
  if (!left.empty())
    retry_.emplace_front(std::move(left));
  return outcome;
}

id_fetcher::quiet_look id_fetcher::look_for_quiet() {
  quiet_look look;
  const bool answered = answers_ != answers_at_look_;
  const auto previous_look = looks_++;
  answers_at_look_ = answers_;
  if (answered || open_.empty())
    return look;
  for (const auto& [sub_id, req] : open_)
    if (req.sent_at_look >= previous_look)
      return look; // sent since the previous look: not quiet for long enough
  const size_t quiet = open_.size();
  look.what = max_requests_ > 1 ? quiet_look::outcome::retrying
                                : quiet_look::outcome::stop;
  // The REQs the relay took were answered and closed; those it dropped are
  // these, so it holds this many fewer than we had open.
  max_requests_ = max_requests_ > quiet ? max_requests_ - quiet : 1;
  for (auto& [sub_id, req] : open_) {
    release(req.pending);
    std::vector<nostr::bytes32> left(req.pending.begin(), req.pending.end());
    if (!left.empty())
      retry_.emplace_front(std::move(left));
    if (look.what == quiet_look::outcome::retrying)
      look.close.push_back("[\"CLOSE\",\"" + sub_id + "\"]");
  }
  unanswered += quiet;
  open_.clear();
  alone_sub_.clear();
  return look;
}

} // namespace ferry
