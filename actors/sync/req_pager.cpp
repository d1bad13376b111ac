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
  auto outcome = after_page(sent_, received_, oldest_, std::move(resume_),
                            opts_.most_per_page);
  due_ = std::move(outcome.next);
  resume_ = std::move(outcome.resume);
  if (outcome.crowded)
    out.warning = "the filter matches more than "
                  + std::to_string(outcome.crowded->limit) + " events at "
                  + std::to_string(outcome.crowded->second)
                  + ": the relay serves no more of that second";
  return out;
}

page_outcome after_page(const nostr::filter& sent, uint64_t received,
                        int64_t oldest, std::optional<nostr::filter> resume,
                        uint64_t most_per_page) {
  page_outcome out;
  const bool got = received > 0 && oldest != INT64_MAX;
  // An empty page ends the paging, but a crowded second's goes on below.
  if (!got && !resume)
    return out;
  auto next = resume ? std::move(*resume) : sent;
  auto until = got ? oldest : *sent.until;
  if (sent.until && *sent.until == until) {
    auto limit = sent.limit.value_or(0);
    if (limit > 0 && received >= limit) {
      auto raised = std::min(limit * 2, most_per_page);
      if (raised > limit) {
        auto second = sent;
        second.since = until;
        second.limit = raised;
        out.next = std::move(second);
        out.resume = std::move(next);
        return out;
      }
      out.crowded = page_outcome::crowded_second{until, limit};
    }
    --until;
  }
  if (until < 0 || (next.since && until < *next.since))
    return out;
  next.until = until;
  out.next = std::move(next);
  return out;
}

} // namespace ferry
