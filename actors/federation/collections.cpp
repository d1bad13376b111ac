#include "actors/federation/collections.hpp"

#include "messages/json_body.hpp"
#include "messages/nostr/hex.hpp"
#include "net/request_target.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <set>
#include <tuple>

namespace ferry {

namespace {

/// One scanned event in the order a page lists them.
struct listed_event {
  int64_t created_at = 0;
  nostr::bytes32 id{};
  std::string json;

  bool operator<(const listed_event& other) const {
    // Newest first, ties by lower id: the store's scan order.
    return std::tie(other.created_at, id) < std::tie(created_at, other.id);
  }
};

caf::error bad(const std::string& field, const std::string& reason) {
  return json_body::invalid(field + ": " + reason);
}

bool read_unsigned(std::string_view text, uint64_t& out) {
  auto end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return !text.empty() && ec == std::errc{} && ptr == end;
}

bool is_lower_hex_id(std::string_view text) {
  return text.size() == 64
         && std::all_of(text.begin(), text.end(), [](char c) {
              return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
            });
}

/// `f` further narrowed by the preview's ids, since and until; nothing when
/// the two cannot both hold.
std::optional<nostr::filter> narrowed(nostr::filter f, const preview_query& q) {
  if (q.ids) {
    std::vector<nostr::bytes32> ids;
    if (f.ids)
      std::set_intersection(f.ids->begin(), f.ids->end(), q.ids->begin(),
                            q.ids->end(), std::back_inserter(ids));
    else
      ids = *q.ids;
    if (ids.empty())
      return std::nullopt;
    f.ids = std::move(ids);
  }
  if (q.since)
    f.since = std::max(f.since.value_or(0), *q.since);
  if (q.until)
    f.until = f.until ? std::min(*f.until, *q.until) : *q.until;
  if (f.since && f.until && *f.since > *f.until)
    return std::nullopt;
  return f;
}

} // namespace

federation_reply federation_error(uint32_t status, const std::string& message,
                                  const std::string& field) {
  boost::json::object error{{"code", status}, {"message", message}};
  if (!field.empty())
    error["field"] = field;
  return {status, boost::json::serialize(
                    boost::json::object{{"error", std::move(error)}})};
}

collection_size measure_collection(const store::event_store& store,
                                   const std::vector<nostr::filter>& filters,
                                   int64_t now) {
  collection_size size;
  std::set<nostr::bytes32> seen;
  for (const auto& f : filters) {
    std::optional<store::scan_position> resume;
    bool more = true;
    while (more)
      more = store.scan(f, now, resume, 10'000,
                        [&](std::string_view json,
                            const store::scan_position& pos) {
                          resume = pos;
                          if (seen.insert(pos.id).second) {
                            ++size.events;
                            size.bytes += json.size();
                          }
                          return true;
                        });
  }
  return size;
}

caf::expected<preview_query> parse_preview_query(std::string_view query) {
  auto decoded = net::decode_query(query);
  if (auto why = std::get_if<std::string>(&decoded))
    return bad("query", *why);
  preview_query result;
  for (const auto& [key, value] : std::get<0>(decoded)) {
    uint64_t number = 0;
    if (key == "limit") {
      if (!read_unsigned(value, number) || number == 0
          || number > max_preview_events)
        return bad("limit", "expected an integer from 1 to "
                              + std::to_string(max_preview_events) + ", got '"
                              + value + "'");
      result.limit = number;
    } else if (key == "offset") {
      if (!read_unsigned(value, number) || number > max_preview_offset)
        return bad("offset", "expected an integer from 0 to "
                               + std::to_string(max_preview_offset) + ", got '"
                               + value + "'");
      result.offset = number;
    } else if (key == "since" || key == "until") {
      if (!read_unsigned(value, number)
          || number > static_cast<uint64_t>(INT64_MAX))
        return bad(key, "expected a unix time in seconds, got '" + value
                          + "'");
      (key == "since" ? result.since : result.until)
        = static_cast<int64_t>(number);
    } else if (key == "ids") {
      std::vector<nostr::bytes32> ids;
      std::string_view rest{value};
      while (true) {
        auto comma = rest.find(',');
        auto hex = rest.substr(0, comma);
        nostr::bytes32 id{};
        if (!is_lower_hex_id(hex) || !nostr::from_hex(hex, id))
          return bad("ids", "expected comma-separated event ids (64 "
                            "lowercase hex), got '"
                              + std::string{hex} + "'");
        ids.push_back(id);
        if (ids.size() > max_preview_events)
          return bad("ids", "expected at most "
                              + std::to_string(max_preview_events) + " ids");
        if (comma == std::string_view::npos)
          break;
        rest.remove_prefix(comma + 1);
      }
      std::sort(ids.begin(), ids.end());
      ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
      result.ids = std::move(ids);
    } else {
      return bad(key, "unknown query parameter; expected limit, offset, ids, "
                      "since or until");
    }
  }
  return result;
}

std::vector<std::string>
preview_collection(const store::event_store& store,
                   const std::vector<nostr::filter>& filters,
                   const preview_query& query, int64_t now) {
  // Each filter's first offset + limit matches hold the page's events.
  auto wanted = static_cast<size_t>(query.offset + query.limit);
  std::set<listed_event> merged;
  std::set<nostr::bytes32> seen;
  for (const auto& filter : filters) {
    auto f = narrowed(filter, query);
    if (!f)
      continue;
    f->limit.reset();
    store.scan(*f, now, std::nullopt, wanted,
               [&](std::string_view json, const store::scan_position& pos) {
                 if (seen.insert(pos.id).second)
                   merged.insert({pos.created_at, pos.id, std::string{json}});
                 return true;
               });
  }
  std::vector<std::string> page;
  auto i = merged.begin();
  for (uint64_t skip = 0; i != merged.end() && skip < query.offset; ++skip)
    ++i;
  for (; i != merged.end() && page.size() < query.limit; ++i)
    page.push_back(i->json);
  return page;
}

std::string to_string(conflict_strategy x) {
  switch (x) {
    case conflict_strategy::skip:
      return "skip";
    case conflict_strategy::merge:
      return "merge";
    case conflict_strategy::overwrite:
      return "overwrite";
  }
  return "merge";
}

caf::expected<pull_request> parse_pull_request(std::string_view body) {
  auto obj = json_body::parse_body(body);
  if (!obj)
    return obj.error();
  if (auto failure = json_body::unknown_keys(
        *obj, "", {"collection", "conflict_strategy"});
      !failure.empty())
    return json_body::invalid(failure);
  pull_request result;
  auto collection = obj->if_contains("collection");
  if (!collection)
    return bad("collection", "required");
  if (!collection->is_string() || !is_peer_name(collection->get_string()))
    return bad("collection", "expected a collection name (1 to 48 of a-z, "
                             "0-9, '.', '_' or '-')");
  result.collection = std::string{collection->get_string()};
  if (auto strategy = obj->if_contains("conflict_strategy")) {
    auto text = strategy->is_string() ? std::string_view{strategy->get_string()}
                                      : std::string_view{};
    if (text == "skip")
      result.strategy = conflict_strategy::skip;
    else if (text == "merge")
      result.strategy = conflict_strategy::merge;
    else if (text == "overwrite")
      result.strategy = conflict_strategy::overwrite;
    else
      return bad("conflict_strategy", "expected one of skip, merge, overwrite");
  }
  return result;
}

} // namespace ferry
