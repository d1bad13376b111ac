#include "actors/sync/up_stream.hpp"

#include "actors/ingest/policy_rules.hpp"
#include "messages/nostr/event.hpp"
#include "messages/nostr/hex.hpp"
#include "store/change_log.hpp"

namespace ferry {

up_stream::up_stream(const store::event_store& store, std::string own_source,
                     std::vector<nostr::filter> filters, uint64_t cursor,
                     size_t window)
  : store_(&store),
    own_source_(std::move(own_source)),
    filters_(std::move(filters)),
    window_(std::max<size_t>(window, 1)),
    done_(cursor),
    read_(cursor) {
}

bool up_stream::send(const nostr::bytes32& id, uint64_t seq, int64_t now,
                     std::vector<std::string>& frames) {
  auto json = store_->get_json(id);
  // Deleted, replaced or purged since: nothing to send.
  if (!json)
    return false;
  nostr::event ev;
  if (!nostr::parse_event(std::string_view{*json}, ev).empty()
      || !nostr::matches_any(filters_, ev))
    return false;
  if (auto exp = nostr::expiration(ev); exp && *exp <= now)
    return false;
  auto hex = nostr::to_hex(id);
  if (auto i = in_flight_.find(hex); i != in_flight_.end()) {
    // On its way already as an extra: that answer settles this entry too,
    // so the cursor must wait for it.
    if (seq > 0 && i->second.seq == 0) {
      i->second.seq = seq;
      by_seq_.emplace(seq, std::move(hex));
      --extras_in_flight_;
    }
    return false;
  }
  frames.push_back("[\"EVENT\"," + *json + "]");
  in_flight_.emplace(hex, flight{seq, now});
  if (seq > 0)
    by_seq_.emplace(seq, std::move(hex));
  else
    ++extras_in_flight_;
  ++sent;
  return true;
}

std::vector<std::string> up_stream::fill(int64_t now) {
  std::vector<std::string> frames;
  while (!extra_.empty() && in_flight_.size() < window_) {
    send(extra_.front(), 0, now, frames);
    extra_.pop_front();
  }
  // Reads in slices, so skipped entries (echoes, other kinds) do not cost a
  // log read each.
  while (in_flight_.size() < window_) {
    auto room = window_ - in_flight_.size();
    size_t read_this_round = 0;
    store::read_changes(*store_, read_, room * 4, [&](const store::change& c) {
      ++read_this_round;
      read_ = c.seq;
      if (c.source == own_source_) {
        ++echoes_skipped;
        return true;
      }
      send(c.id, c.seq, now, frames);
      return in_flight_.size() < window_;
    });
    if (read_this_round == 0) {
      at_end_ = true;
      break;
    }
    at_end_ = false;
  }
  if (by_seq_.empty())
    done_ = read_;
  release_skip();
  return frames;
}

void up_stream::enqueue(const std::vector<nostr::bytes32>& ids) {
  extra_.insert(extra_.end(), ids.begin(), ids.end());
}

void up_stream::skip_to(uint64_t seq) {
  if (seq <= done_ || !by_seq_.empty())
    return;
  if (!held_)
    held_ = done_;
  done_ = seq;
  read_ = std::max(read_, seq);
  release_skip();
}

void up_stream::release_skip() {
  if (held_ && extra_.empty() && extras_in_flight_ == 0)
    held_.reset();
}

up_stream::answer up_stream::on_ok(const std::string& id_hex, bool ok,
                                   std::string_view message) {
  auto i = in_flight_.find(id_hex);
  if (i == in_flight_.end())
    return answer::unknown;
  auto result = answer::accepted;
  if (ok) {
    if (message.rfind("duplicate:", 0) == 0) {
      result = answer::duplicate;
      ++duplicate;
    } else {
      ++accepted;
    }
  } else if (message.rfind("rate-limited:", 0) == 0) {
    // Stays in flight: the connection backs off and rewinds.
    return answer::rate_limited;
  } else if (is_temporary_refusal(message)) {
    // The remote did not take it, but may next time (a full disk, a writer
    // restarting: "error: ..."). Stays in flight, so the cursor stays below
    // it: passing it would lose the event for the remote for good.
    return answer::failed;
  } else if (message.rfind("auth-required:", 0) == 0) {
    return answer::auth_required;
  } else {
    result = answer::refused;
    ++refused;
  }
  if (i->second.seq > 0)
    by_seq_.erase(i->second.seq);
  else
    --extras_in_flight_;
  in_flight_.erase(i);
  done_ = by_seq_.empty() ? read_ : by_seq_.begin()->first - 1;
  release_skip();
  return result;
}

void up_stream::rewind() {
  // Unanswered extras are sent again first.
  for (auto& [hex, f] : in_flight_)
    if (f.seq == 0) {
      nostr::bytes32 id;
      if (nostr::from_hex(hex, id))
        extra_.push_front(id);
    }
  in_flight_.clear();
  by_seq_.clear();
  extras_in_flight_ = 0;
  read_ = done_;
  at_end_ = false;
}

uint64_t up_stream::cursor() const {
  return held_ ? *held_ : done_;
}

int64_t up_stream::oldest_sent_at() const {
  int64_t oldest = 0;
  for (auto& [id, f] : in_flight_)
    if (oldest == 0 || f.sent_at < oldest)
      oldest = f.sent_at;
  return oldest;
}

} // namespace ferry
