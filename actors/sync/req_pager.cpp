#include "actors/sync/req_pager.hpp"

#include "messages/nostr/event.hpp"

#include <algorithm>
#include <utility>

namespace ferry {

req_pager::req_pager(nostr::filter f, options opts) : opts_(std::move(opts)) {
  f.limit = std::min(f.limit.value_or(opts_.page_size), opts_.page_size);
  due_ = std::move(f);
}

std::string req_pager::fill() {
  if (open_ || !due_)
    return {};
  sent_ = std::move(*due_);
  due_.reset();
  sub_id_ = opts_.sub_prefix + std::to_string(++pages_);
  open_ = true;
  received_ = 0;
  oldest_ = INT64_MAX;
  std::string req = "[\"REQ\",";
  nostr::append_json_string(req, sub_id_);
  req += ',';
  req += nostr::to_json(sent_);
  req += ']';
  return req;
}

bool req_pager::on_event(const nostr::event& ev) {
  if (!open_ || !sent_.matches(ev))
    return false;
  ++received_;
  ++received_total_;
  oldest_ = std::min(oldest_, ev.created_at);
  return true;
}

req_pager::after_eose req_pager::on_eose() {
  after_eose out;
  if (!open_)
    return out;
  open_ = false;
  out.close = "[\"CLOSE\",";
  nostr::append_json_string(out.close, sub_id_);
  out.close += ']';
  const bool got = received_ > 0;
  // An empty page ends the paging, but a crowded second's goes on below.
  if (!got && !resume_)
    return out;
  auto next = resume_ ? std::move(*resume_) : sent_;
  resume_.reset();
  auto until = got ? oldest_ : *sent_.until;
  if (sent_.until && *sent_.until == until) {
    auto limit = sent_.limit.value_or(0);
    if (limit > 0 && received_ >= limit) {
      auto raised = std::min(limit * 2, opts_.most_per_page);
      if (raised > limit) {
        auto second = sent_;
        second.since = until;
        second.limit = raised;
        due_ = std::move(second);
        resume_ = std::move(next);
        return out;
      }
      out.warning = "the filter matches more than " + std::to_string(limit)
                    + " events at " + std::to_string(until)
                    + ": the relay serves no more of that second";
    }
    --until;
  }
  if (until < 0 || (next.since && until < *next.since))
    return out;
  next.until = until;
  due_ = std::move(next);
  return out;
}

} // namespace ferry
