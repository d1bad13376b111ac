#include "app/console_federation.hpp"

#include "app/console_view.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <vector>

namespace ferry::console {

namespace {

namespace json = boost::json;

std::string text_of(const json::object& x, const char* key) {
  auto v = x.if_contains(key);
  if (!v)
    return "-";
  if (v->is_string())
    return v->as_string().empty() ? "-" : std::string{v->as_string()};
  return json::serialize(*v);
}

int64_t int_of(const json::object& x, const char* key) {
  auto v = x.if_contains(key);
  return v && v->is_int64() ? v->as_int64() : 0;
}

/// The pinned key as people compare it, or why nothing moves.
std::string pin_text(const json::object& peer) {
  if (text_of(peer, "pin_mismatch") != "-")
    return "MISMATCH " + text_of(peer, "pin_mismatch").substr(0, 12);
  auto pinned = text_of(peer, "pinned");
  return pinned == "-" ? pinned : pinned.substr(0, 12);
}

std::string handshake_text(const json::object& peer) {
  auto h = peer.if_contains("handshake");
  if (!h || !h->is_object())
    return "-";
  auto& o = h->as_object();
  auto status = text_of(o, "status");
  if (status == "-")
    return status;
  auto code = int_of(o, "http_status");
  return code == 0 ? status : status + " (" + std::to_string(code) + ")";
}

} // namespace

federation_call federation_request(const std::string& command,
                                   const std::string& name) {
  federation_call call;
  call.name = name;
  if (command == "peers")
    call.op = "list";
  else if (command == "collections")
    call.op = "our_collections";
  else if (command == "peer")
    call.op = "get";
  else
    // "peer-reset" -> "reset", and so on.
    call.op = command.substr(command.find('-') + 1);
  return call;
}

federation_call pull_request_call(const std::string& words) {
  std::vector<std::string> parts;
  for (size_t start = 0; start <= words.size();) {
    auto end = std::min(words.find(' ', start), words.size());
    parts.push_back(words.substr(start, end - start));
    start = end + 1;
  }
  federation_call call;
  call.op = "pull";
  call.name = parts[0];
  json::object body{{"collection", parts.size() > 1 ? parts[1] : ""}};
  if (parts.size() > 2)
    body["conflict_strategy"] = parts[2];
  call.body = json::serialize(body);
  return call;
}

std::string render_pull(const json::value& report) {
  if (!report.is_object())
    return json::serialize(report) + "\n";
  const auto& x = report.as_object();
  return text_of(x, "peer") + "/" + text_of(x, "collection") + " ("
         + text_of(x, "conflict_strategy") + "): "
         + std::to_string(int_of(x, "imported")) + " imported, "
         + std::to_string(int_of(x, "skipped")) + " skipped, "
         + std::to_string(int_of(x, "replaced")) + " replaced, "
         + std::to_string(int_of(x, "refused")) + " refused, "
         + std::to_string(int_of(x, "failed")) + " failed\n";
}

answer<std::string> federation_text(const answer<federation_reply>& reply) {
  answer<std::string> result;
  if (!reply.value) {
    result.problem = reply.problem;
    return result;
  }
  if (reply.value->status < 400) {
    result.value = reply.value->body;
    return result;
  }
  json::error_code ec;
  auto body = json::parse(reply.value->body, ec);
  auto error = !ec && body.is_object() ? body.as_object().if_contains("error")
                                       : nullptr;
  result.problem = error && error->is_object()
                     ? text_of(error->as_object(), "message")
                     : reply.value->body;
  return result;
}

std::string render_peers(const json::value& peers, int64_t now) {
  auto list = peers.is_object() ? peers.as_object().if_contains("peers")
                                : nullptr;
  if (!list || !list->is_array() || list->as_array().empty())
    return "(no federation peers)\n";
  std::vector<std::vector<std::string>> rows{
    {"NAME", "DIRECTION", "STATUS", "MODE", "PINNED", "LAST-SEEN", "HANDSHAKE",
     "ENDPOINT"}};
  for (const auto& item : list->as_array()) {
    if (!item.is_object())
      continue;
    const auto& peer = item.as_object();
    rows.push_back({text_of(peer, "name"), text_of(peer, "direction"),
                    text_of(peer, "status"), text_of(peer, "mode"),
                    pin_text(peer), format_ago(int_of(peer, "last_seen"), now),
                    handshake_text(peer), text_of(peer, "endpoint")});
  }
  return render_rows(rows);
}

std::string render_collections(const json::value& collections, int64_t) {
  auto list = collections.is_object()
                ? collections.as_object().if_contains("collections")
                : nullptr;
  if (!list || !list->is_array() || list->as_array().empty())
    return "(no federation collections)\n";
  std::vector<std::vector<std::string>> rows{
    {"NAME", "EVENTS", "BYTES", "PEERS", "FILTERS"}};
  for (const auto& item : list->as_array()) {
    if (!item.is_object())
      continue;
    const auto& c = item.as_object();
    std::string peers;
    if (auto names = c.if_contains("peers"); names && names->is_array())
      for (const auto& name : names->as_array())
        if (name.is_string())
          peers += (peers.empty() ? "" : ",") + std::string{name.as_string()};
    rows.push_back({text_of(c, "name"), std::to_string(int_of(c, "events")),
                    std::to_string(int_of(c, "bytes")),
                    peers.empty() ? "-" : peers, text_of(c, "filters")});
  }
  return render_rows(rows);
}

std::string render_peer_change(const std::string& command,
                               const json::value& peer) {
  if (!peer.is_object())
    return json::serialize(peer) + "\n";
  const auto& x = peer.as_object();
  auto what = command == "peer-reset"
                ? std::string{"reset: pin, cursor and last_seen cleared"}
                : command == "peer-pause" ? "paused" : "resumed";
  return text_of(x, "name") + ": " + what + " (mode " + text_of(x, "mode")
         + ", link " + text_of(x, "status") + ")\n";
}

} // namespace ferry::console
