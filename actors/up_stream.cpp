#include "actors/up_stream.hpp"

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

std::vector<std::string> up_stream::fill(int64_t now) {
  std::vector<std::string> frames;
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
      auto json = store_->get_json(c.id);
      // Deleted, replaced or purged since it was logged: nothing to send.
      if (!json)
        return true;
      nostr::event ev;
      if (!nostr::parse_event(std::string_view{*json}, ev).empty()
          || !nostr::matches_any(filters_, ev))
        return true;
      if (auto exp = nostr::expiration(ev); exp && *exp <= now)
        return true;
      auto id = nostr::to_hex(c.id);
      frames.push_back("[\"EVENT\"," + *json + "]");
      in_flight_.emplace(id, flight{c.seq, now});
      by_seq_.emplace(c.seq, std::move(id));
      ++sent;
      return in_flight_.size() < window_;
    });
    if (read_this_round == 0) {
      at_end_ = true;
      break;
    }
    at_end_ = false;
  }
  if (in_flight_.empty())
    done_ = read_;
  return frames;
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
  } else if (message.rfind("auth-required:", 0) == 0) {
    return answer::auth_required;
  } else {
    result = answer::refused;
    ++refused;
  }
  by_seq_.erase(i->second.seq);
  in_flight_.erase(i);
  done_ = by_seq_.empty() ? read_ : by_seq_.begin()->first - 1;
  return result;
}

void up_stream::rewind() {
  in_flight_.clear();
  by_seq_.clear();
  read_ = done_;
  at_end_ = false;
}

uint64_t up_stream::cursor() const {
  return done_;
}

int64_t up_stream::oldest_sent_at() const {
  int64_t oldest = 0;
  for (auto& [id, f] : in_flight_)
    if (oldest == 0 || f.sent_at < oldest)
      oldest = f.sent_at;
  return oldest;
}

} // namespace ferry
