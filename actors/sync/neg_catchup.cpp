#include "actors/sync/neg_catchup.hpp"

#include "messages/error.hpp"
#include "messages/nostr/event.hpp"

#include <algorithm>

namespace ferry {

namespace neg = nostr::negentropy;

neg_catchup::neg_catchup(const store::event_store& store,
                         std::vector<nostr::filter> filters, int64_t since,
                         int64_t now, limits lim)
  : store_(&store), filters_(std::move(filters)), now_(now), limits_(lim) {
  for (size_t i = 0; i < filters_.size(); ++i) {
    auto& f = filters_[i];
    // A sync wants every matching event; a limit would cut the set.
    f.limit.reset();
    window w;
    w.filter = i;
    w.lo = std::max(f.since.value_or(0), since);
    w.hi = f.until;
    if (w.hi && *w.hi < w.lo)
      continue;
    windows_.push_back(w);
  }
}

std::string neg_catchup::frame(std::string_view verb, std::string_view tail) {
  std::string out = "[\"";
  out += verb;
  out += "\",";
  nostr::append_json_string(out, session_);
  out += tail;
  out += ']';
  bytes_sent += out.size();
  return out;
}

nostr::filter neg_catchup::filter_of(const window& w) const {
  auto f = filters_[w.filter];
  if (w.lo > 0)
    f.since = w.lo;
  else
    f.since.reset();
  f.until = w.hi;
  return f;
}

bool neg_catchup::split(const window& w) {
  auto hi = w.hi.value_or(std::max(now_, w.lo));
  if (w.depth >= limits_.max_splits || hi <= w.lo)
    return false;
  auto mid = w.lo + (hi - w.lo) / 2;
  window lower = w;
  lower.hi = mid;
  lower.depth = w.depth + 1;
  window upper = w;
  upper.lo = mid + 1;
  upper.depth = w.depth + 1;
  windows_.push_front(upper);
  windows_.push_front(lower);
  ++splits;
  return true;
}

neg_catchup::action neg_catchup::open_next(std::vector<std::string> frames) {
  session_.clear();
  client_.reset();
  if (windows_.empty())
    return {action::kind::done, std::move(frames), {}};
  scanning_ = windows_.front();
  windows_.pop_front();
  scan_request request{filter_of(*scanning_), now_, limits_.max_items};
  if (limits_.scan_inline)
    return open_scanned(
      store_->negentropy_items(request.filter, request.now, request.max_items),
      std::move(frames));
  action act{action::kind::scan, std::move(frames), {}};
  act.scan = std::move(request);
  return act;
}

neg_catchup::action neg_catchup::on_items(caf::expected<store::item_scan> scan) {
  if (!scanning_)
    return {};
  return open_scanned(std::move(scan), {});
}

neg_catchup::action
neg_catchup::open_scanned(caf::expected<store::item_scan> scan,
                          std::vector<std::string> frames) {
  auto w = *scanning_;
  scanning_.reset();
  if (!scan)
    return {action::kind::fail, {}, "cannot read the local set: "
                                      + render(scan.error())};
  if (scan->over_limit) {
    if (split(w))
      return open_next(std::move(frames));
    return {action::kind::fail, {},
            "more than " + std::to_string(limits_.max_items)
              + " local events in one second of filter "
              + nostr::to_json(filters_[w.filter])};
  }
  // Checked before any session opened: a window split for its size, or a
  // later window, is not the whole range.
  if (limits_.page_when_empty && scan->items.empty() && filters_.size() == 1
      && sessions == 0 && splits == 0 && windows_.empty())
    return {action::kind::page, std::move(frames), {}};
  for (const auto& x : scan->items)
    newest_local_ = std::max(newest_local_, static_cast<int64_t>(x.timestamp));
  auto items = std::make_shared<const neg::item_set>(std::move(scan->items));
  client_ = std::make_unique<neg::client>(items, limits_.frame_size_limit);
  current_ = w;
  session_ = "ferry-neg-" + std::to_string(next_session_++);
  session_rounds_ = 0;
  ++sessions;
  auto query = client_->initiate();
  frames.push_back(frame("NEG-OPEN", "," + nostr::to_json(filter_of(w)) + ",\""
                                       + neg::encode_hex(query) + "\""));
  return {action::kind::send, std::move(frames), {}};
}

neg_catchup::action neg_catchup::start() {
  return open_next({});
}

neg_catchup::action neg_catchup::resume() {
  return open_next({});
}

neg_catchup::action neg_catchup::on_message(std::string_view sub_id,
                                            std::string_view hex) {
  if (session_.empty() || sub_id != session_)
    return {};
  std::string binary;
  if (!neg::decode_hex(hex, binary))
    return {action::kind::fail, {}, "NEG-MSG is not hex"};
  neg::client::round r;
  if (auto why = client_->reconcile(binary, r); !why.empty())
    return {answered_ ? action::kind::fail : action::kind::fallback, {},
            "unusable NEG-MSG: " + why};
  answered_ = true;
  ++rounds;
  have_count += r.have.size();
  need_count += r.need.size();
  have_.insert(have_.end(), r.have.begin(), r.have.end());
  need_.insert(need_.end(), r.need.begin(), r.need.end());
  if (r.next) {
    if (++session_rounds_ > limits_.max_rounds)
      return {action::kind::fail, {},
              "no agreement after " + std::to_string(limits_.max_rounds)
                + " rounds"};
    return {action::kind::send,
            {frame("NEG-MSG", ",\"" + neg::encode_hex(*r.next) + "\"")}, {}};
  }
  std::vector<std::string> frames{frame("NEG-CLOSE", "")};
  return open_next(std::move(frames));
}

neg_catchup::action neg_catchup::on_error(std::string_view sub_id,
                                          std::string_view reason) {
  if (session_.empty() || sub_id != session_)
    return {};
  std::string why{reason};
  // Our NEG-OPEN can cross the remote's AUTH challenge: the same window is
  // opened again once the connection has authenticated.
  if (why.rfind("auth-required:", 0) == 0 && !auth_retried_) {
    auth_retried_ = true;
    windows_.push_front(current_);
    session_.clear();
    client_.reset();
    return {action::kind::authenticate, {}, why};
  }
  // Too big for the remote: halve the window and try both halves.
  if (why.rfind("blocked:", 0) == 0 && split(current_))
    return open_next({});
  if (!answered_)
    return {action::kind::fallback, {}, "NEG-OPEN refused: " + why};
  return {action::kind::fail, {}, "NEG-ERR: " + why};
}

neg_catchup::action neg_catchup::on_notice(std::string_view text) {
  if (session_.empty() || answered_)
    return {};
  return {action::kind::fallback, {},
          "the relay answered NEG-OPEN with a notice: " + std::string{text}};
}

std::vector<nostr::bytes32> neg_catchup::take_need() {
  return std::exchange(need_, {});
}

std::vector<nostr::bytes32> neg_catchup::take_have() {
  return std::exchange(have_, {});
}

} // namespace ferry
