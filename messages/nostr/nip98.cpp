#include "messages/nostr/nip98.hpp"

#include "messages/nostr/event.hpp"
#include "messages/nostr/sha256.hpp"

#include <array>
#include <cstdlib>

namespace ferry::nostr {

namespace {

constexpr char alphabet[]
  = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Sextet value of each byte, or -1 (padding is handled by the decoder).
constexpr std::array<int8_t, 256> make_sextets() {
  std::array<int8_t, 256> table{};
  for (auto& x : table)
    x = -1;
  for (int i = 0; i < 64; ++i)
    table[static_cast<uint8_t>(alphabet[i])] = static_cast<int8_t>(i);
  return table;
}

constexpr auto sextets = make_sextets();

/// True for an ASCII case-insensitive prefix match.
bool starts_with_nocase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size())
    return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    auto a = text[i];
    auto b = prefix[i];
    if (a >= 'A' && a <= 'Z')
      a = static_cast<char>(a - 'A' + 'a');
    if (b >= 'A' && b <= 'Z')
      b = static_cast<char>(b - 'A' + 'a');
    if (a != b)
      return false;
  }
  return true;
}

} // namespace

std::string base64_encode(std::string_view data) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  auto byte = [&](size_t k) { return static_cast<uint8_t>(data[k]); };
  for (; i + 3 <= data.size(); i += 3) {
    uint32_t n = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += alphabet[(n >> 6) & 63];
    out += alphabet[n & 63];
  }
  if (auto rest = data.size() - i; rest > 0) {
    uint32_t n = byte(i) << 16;
    if (rest == 2)
      n |= byte(i + 1) << 8;
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += rest == 2 ? alphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0)
    return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    auto last = i + 4 == text.size();
    // Padding: "xx==" or "xxx=", and only in the final quantum.
    size_t pad = 0;
    if (last && text[i + 3] == '=')
      pad = text[i + 2] == '=' ? 2 : 1;
    uint32_t n = 0;
    for (size_t k = 0; k < 4 - pad; ++k) {
      auto v = sextets[static_cast<uint8_t>(text[i + k])];
      if (v < 0)
        return std::nullopt;
      n |= static_cast<uint32_t>(v) << (18 - 6 * k);
    }
    out += static_cast<char>((n >> 16) & 0xff);
    if (pad < 2)
      out += static_cast<char>((n >> 8) & 0xff);
    if (pad < 1)
      out += static_cast<char>(n & 0xff);
    // Non-zero bits under the padding would let two texts decode alike.
    if ((pad == 2 && (n & 0xffff) != 0) || (pad == 1 && (n & 0xff) != 0))
      return std::nullopt;
  }
  return out;
}

namespace {

/// `verify_http_auth` with the u tag checked by `url_matches`.
template <class UrlMatches>
std::string verify_with(std::string_view authorization, UrlMatches url_matches,
                        std::string_view method, std::string_view body,
                        int64_t now, http_auth_event* event_out) {
  // RFC 9110: the auth scheme is case-insensitive.
  constexpr std::string_view scheme = "Nostr ";
  if (!starts_with_nocase(authorization, scheme))
    return "not a Nostr authorization";
  auto token = authorization.substr(scheme.size());
  while (!token.empty() && token.front() == ' ')
    token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ')
    token.remove_suffix(1);
  auto json = base64_decode(token);
  if (!json)
    return "token is not valid base64";
  event ev;
  if (auto err = parse_event(*json, ev); !err.empty())
    return "token is not a Nostr event: " + err;
  if (ev.kind != http_auth_kind)
    return "event kind is " + std::to_string(ev.kind) + ", not 27235";
  if (auto err = check_event(ev); !err.empty())
    return "event is not authentic: " + err;
  if (std::llabs(ev.created_at - now) > http_auth_window)
    return "event created_at is more than "
           + std::to_string(http_auth_window) + " s away from now";
  auto urls = tag_values(ev, "u");
  if (urls.size() != 1)
    return "event needs exactly one u tag";
  if (!url_matches(std::string_view{urls[0]}))
    return "u tag does not match the request URL";
  auto methods = tag_values(ev, "method");
  if (methods.size() != 1)
    return "event needs exactly one method tag";
  if (methods[0] != method)
    return "method tag does not match the request method";
  auto payloads = tag_values(ev, "payload");
  if (payloads.size() > 1)
    return "event has more than one payload tag";
  if (!body.empty() && payloads.empty())
    return "event has no payload tag for the request body";
  if (!payloads.empty() && payloads[0] != to_hex(sha256(body)))
    return "payload tag does not match the request body";
  if (event_out != nullptr)
    *event_out = {ev.pubkey, ev.id, ev.created_at};
  return {};
}

} // namespace

std::string verify_http_auth(std::string_view authorization,
                             std::string_view url, std::string_view method,
                             std::string_view body, int64_t now,
                             http_auth_event* event_out) {
  return verify_with(
    authorization, [url](std::string_view u) { return u == url; }, method,
    body, now, event_out);
}

std::string verify_http_auth_either_scheme(std::string_view authorization,
                                           std::string_view host_and_target,
                                           std::string_view method,
                                           std::string_view body, int64_t now,
                                           http_auth_event* event_out) {
  auto matches = [host_and_target](std::string_view u) {
    for (std::string_view scheme : {"http://", "https://"})
      if (u.size() == scheme.size() + host_and_target.size()
          && u.substr(0, scheme.size()) == scheme
          && u.substr(scheme.size()) == host_and_target)
        return true;
    return false;
  };
  return verify_with(authorization, matches, method, body, now, event_out);
}

// -- http_auth_memory ---------------------------------------------------------

http_auth_memory::http_auth_memory(size_t capacity) : capacity_(capacity) {
  // nop
}

void http_auth_memory::expire(int64_t now) {
  auto end = by_last_second_.lower_bound(now);
  for (auto i = by_last_second_.begin(); i != end; ++i)
    for (const auto& id : i->second)
      ids_.erase(id);
  by_last_second_.erase(by_last_second_.begin(), end);
}

http_auth_memory::verdict
http_auth_memory::admit(const bytes32& id, int64_t created_at, int64_t now) {
  std::lock_guard<std::mutex> guard{mutex_};
  expire(now);
  if (ids_.count(id) != 0)
    return verdict::reused;
  if (ids_.size() >= capacity_)
    return verdict::full;
  ids_.insert(id);
  by_last_second_[created_at + http_auth_window].push_back(id);
  return verdict::fresh;
}

int64_t http_auth_memory::seconds_until_room(int64_t now) const {
  std::lock_guard<std::mutex> guard{mutex_};
  auto first = by_last_second_.lower_bound(now);
  return first == by_last_second_.end() ? 1 : first->first - now + 1;
}

size_t http_auth_memory::size() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return ids_.size();
}

// -- signing ------------------------------------------------------------------

std::string make_http_auth(const keypair& keys, std::string_view url,
                           std::string_view method, std::string_view body,
                           int64_t now) {
  event ev;
  ev.kind = http_auth_kind;
  ev.created_at = now;
  ev.tags.push_back({"u", std::string{url}});
  ev.tags.push_back({"method", std::string{method}});
  if (!body.empty())
    ev.tags.push_back({"payload", to_hex(sha256(body))});
  uint8_t nonce[16];
  random_bytes(nonce, sizeof(nonce));
  ev.tags.push_back({"nonce", to_hex(nonce, sizeof(nonce))});
  sign_event(ev, keys);
  return "Nostr " + base64_encode(to_json(ev));
}

} // namespace ferry::nostr
