#include "net/request_target.hpp"

#include "net/hex_digit.hpp"

#include <cstring>

namespace ferry::net {
namespace {

bool is_unreserved(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
         || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'
         || c == '~';
}

/// RFC 3986 `pchar` without '%' (escapes are checked on their own).
bool is_path_char(char c) {
  return is_unreserved(c) || std::strchr("!$&'()*+,;=:@", c) != nullptr;
}

/// The byte an escape at `text[i]` ('%') stands for; -1 if it is broken.
int escaped_byte(std::string_view text, size_t i) {
  if (i + 2 >= text.size())
    return -1;
  auto hi = hex_digit_value(text[i + 1]);
  auto lo = hex_digit_value(text[i + 2]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

std::string quoted(std::string_view text) {
  return "'" + std::string{text} + "'";
}

/// Decodes one raw path segment; sets `error` and returns nothing on failure.
std::string decode_segment(std::string_view raw, std::string& error) {
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    auto c = raw[i];
    if (c != '%') {
      if (!is_path_char(c)) {
        error = "character " + quoted(std::string_view{&raw[i], 1})
                + " must be percent-encoded in segment " + quoted(raw);
        return {};
      }
      out += c;
      continue;
    }
    auto byte = escaped_byte(raw, i);
    if (byte < 0) {
      error = "broken percent escape in segment " + quoted(raw);
      return {};
    }
    auto decoded = static_cast<char>(byte);
    if (is_unreserved(decoded)) {
      error = "escape " + quoted(raw.substr(i, 3)) + " in segment "
              + quoted(raw) + " is not canonical; write "
              + quoted(std::string_view{&decoded, 1});
      return {};
    }
    if (byte < 0x20 || byte == 0x7F) {
      error = "escaped control character in segment " + quoted(raw);
      return {};
    }
    out += decoded;
    i += 2;
  }
  return out;
}

} // namespace

std::variant<request_target, std::string>
parse_request_target(std::string_view target) {
  if (target.empty())
    return std::string{"empty request target"};
  for (unsigned char c : target)
    if (c <= 0x20 || c >= 0x7F)
      return std::string{"spaces, control characters and non-ASCII bytes are "
                         "not allowed in the request target"};
  if (target == "*")
    return std::string{"asterisk-form request targets are not accepted"};
  if (target.front() != '/') {
    if (target.find("://") != std::string_view::npos)
      return std::string{"absolute-form request targets are not accepted; "
                         "send the path only"};
    return std::string{"the request target must start with '/'"};
  }
  if (target.size() > 1 && target[1] == '/')
    return std::string{"the request target must not start with '//'"};
  if (target.find('#') != std::string_view::npos)
    return std::string{"a fragment ('#') is not allowed in the request target"};
  request_target result;
  auto question = target.find('?');
  auto path = target.substr(0, question);
  if (question != std::string_view::npos) {
    result.has_query = true;
    auto query = target.substr(question + 1);
    for (size_t i = 0; i < query.size(); ++i)
      if (query[i] == '%' && escaped_byte(query, i) < 0)
        return std::string{"broken percent escape in the query"};
    result.query = std::string{query};
  }
  if (path == "/")
    return result;
  // Split first, decode after: an escaped '/' never makes a new segment.
  path.remove_prefix(1);
  while (true) {
    auto end = path.find('/');
    auto raw = path.substr(0, end);
    if (raw.empty())
      return std::string{"empty path segment (a doubled or trailing '/')"};
    if (raw == "." || raw == "..")
      return std::string{"dot segments ('.', '..') are not accepted"};
    std::string error;
    auto segment = decode_segment(raw, error);
    if (!error.empty())
      return error;
    result.segments.push_back(std::move(segment));
    if (end == std::string_view::npos)
      break;
    path.remove_prefix(end + 1);
  }
  return result;
}

std::variant<std::vector<query_parameter>, std::string>
decode_query(std::string_view query) {
  std::vector<query_parameter> result;
  auto decode = [](std::string_view raw, std::string& out) -> std::string {
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '+') {
        out += ' ';
        continue;
      }
      if (raw[i] != '%') {
        out += raw[i];
        continue;
      }
      auto byte = escaped_byte(raw, i);
      if (byte < 0)
        return "broken percent escape in the query";
      if (byte < 0x20 || byte == 0x7F)
        return "escaped control character in the query";
      out += static_cast<char>(byte);
      i += 2;
    }
    return {};
  };
  while (!query.empty()) {
    auto end = query.find('&');
    auto pair = query.substr(0, end);
    auto equals = pair.find('=');
    query_parameter param;
    if (auto why = decode(pair.substr(0, equals), param.key); !why.empty())
      return why;
    if (equals != std::string_view::npos)
      if (auto why = decode(pair.substr(equals + 1), param.value);
          !why.empty())
        return why;
    if (param.key.empty())
      return std::string{"empty parameter name in the query"};
    for (const auto& earlier : result)
      if (earlier.key == param.key)
        return "query parameter " + quoted(param.key) + " given twice";
    result.push_back(std::move(param));
    if (end == std::string_view::npos)
      break;
    query.remove_prefix(end + 1);
  }
  return result;
}

} // namespace ferry::net
