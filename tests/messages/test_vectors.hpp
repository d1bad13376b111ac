#pragma once

#include "messages/nostr/event.hpp"
#include "tests/fixtures/paths.hpp"

#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace ferry::test {

/// The non-empty lines of `tests/messages/vectors/<name>`; throws when the file
/// is missing, so a moved vector file fails the test instead of passing empty.
inline std::vector<std::string> read_vector_lines(const std::string& name) {
  auto path = test::source_dir() + "/tests/messages/vectors/" + name;
  std::ifstream in{path};
  if (!in)
    throw std::runtime_error("cannot open " + path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    if (!line.empty())
      lines.push_back(line);
  return lines;
}

/// Field-by-field equality (the event struct has no operator==).
inline bool same_event(const nostr::event& a, const nostr::event& b) {
  return a.id == b.id && a.pubkey == b.pubkey && a.created_at == b.created_at
         && a.kind == b.kind && a.tags == b.tags && a.content == b.content
         && a.sig == b.sig;
}

} // namespace ferry::test
