#pragma once

// The realistic corpus the benches share (issue 13): signed events from 200
// authors in the proportions a git-over-Nostr relay sees — notes, reactions,
// comments, profiles, contact and relay lists, articles and every NIP-34 kind
// (repository announcements and states, patches, pull requests and their
// updates, issues, status events, grasp lists) — with contents from a few
// bytes to a few KB, about 880 bytes per event on average. The seed fixes
// every key, timestamp and byte of content, so a corpus is generated once per
// build directory and read from its cache file afterwards.

#include "bench/bench_util.hpp"

#include "messages/nostr/event.hpp"
#include "messages/nostr/keys.hpp"

#include <array>
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace ferry::bench {

class realistic_corpus {
public:
  static constexpr size_t author_count = 200;
  /// Bump when the shape changes, so stale cache files are not reused.
  static constexpr int version = 2;
  /// The newest created_at; events spread over the 60 days before it.
  static constexpr int64_t newest = 1'760'000'000;
  static constexpr int64_t span_seconds = 60 * 86400;

  realistic_corpus() {
    std::mt19937_64 rng{0xc0a5'0000u};
    while (keys_.size() < author_count)
      if (auto keys = nostr::keypair_from_secret(random_bytes32(rng)))
        keys_.push_back(*keys);
  }

  /// The JSONL file of `n` events under `cache_dir`, generated (on `threads`
  /// threads) only when it is not there yet. @returns its path.
  fs::path jsonl(const fs::path& cache_dir, size_t n, unsigned threads) const {
    auto path = cache_dir
                / ("corpus-v" + std::to_string(version) + "-" + std::to_string(n) + ".jsonl");
    if (fs::exists(path))
      return path;
    fs::create_directories(cache_dir);
    auto start = clock_type::now();
    std::vector<std::string> chunks(threads);
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        for (size_t i = n * t / threads; i < n * (t + 1) / threads; ++i) {
          nostr::append_json(chunks[t], make(i));
          chunks[t] += '\n';
        }
      });
    for (auto& th : pool)
      th.join();
    auto partial = path;
    partial += ".partial";
    {
      std::ofstream out(partial, std::ios::binary);
      for (auto& chunk : chunks)
        out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
      if (!out.flush())
        throw std::runtime_error("cannot write " + partial.string());
    }
    fs::rename(partial, path);
    std::printf("generated %zu corpus events (%.1f MB) in %.1f s into %s (cached)\n", n,
                fs::file_size(path) / 1e6, seconds_since(start), path.c_str());
    return path;
  }

  /// Event number `i` of every corpus: the same for any `n` and thread count.
  nostr::event make(size_t i) const {
    std::mt19937_64 rng{0x5eed'0000'0000u + i};
    const auto& keys = keys_[uniform(rng, 0, author_count - 1)];
    nostr::event ev;
    ev.created_at = newest - static_cast<int64_t>(uniform(rng, 0, span_seconds));
    auto roll = uniform(rng, 0, 999);
    if (roll < 420)
      note(rng, ev);
    else if (roll < 570)
      reaction(rng, ev);
    else if (roll < 640)
      comment(rng, ev);
    else if (roll < 740)
      patch(rng, ev);
    else if (roll < 790)
      issue(rng, ev);
    else if (roll < 820)
      pull_request(rng, ev, roll < 805 ? 1618 : 1619);
    else if (roll < 870)
      status(rng, ev);
    else if (roll < 900)
      article(rng, ev);
    else if (roll < 920)
      repository(rng, ev, keys);
    else if (roll < 950)
      repository_state(rng, ev);
    else if (roll < 965)
      profile(rng, ev);
    else if (roll < 975)
      contacts(rng, ev);
    else if (roll < 990)
      relay_list(rng, ev, 10002);
    else
      relay_list(rng, ev, 10317);
    nostr::sign_event(ev, keys);
    return ev;
  }

private:
  static size_t uniform(std::mt19937_64& rng, size_t lo, size_t hi) {
    return std::uniform_int_distribution<size_t>{lo, hi}(rng);
  }

  static std::string hex(std::mt19937_64& rng) {
    return nostr::to_hex(random_bytes32(rng));
  }

  std::string author(std::mt19937_64& rng) const {
    return nostr::to_hex(keys_[uniform(rng, 0, author_count - 1)].pubkey);
  }

  /// Words, punctuation, quotes, backslashes and newlines: text that needs
  /// JSON escaping the way real notes and patches do.
  static std::string text(std::mt19937_64& rng, size_t size) {
    static const std::array<const char*, 24> words{
      "the",   "relay", "nostr",  "patch", "commit", "merge",  "fix",   "build",
      "event", "sync",  "branch", "tests", "\"quoted\"", "path\\to", "and", "with",
      "for",   "when",  "store",  "index", "client", "server", "query", "é"};
    std::string out;
    out.reserve(size + 16);
    while (out.size() < size) {
      out += words[uniform(rng, 0, words.size() - 1)];
      auto roll = uniform(rng, 0, 19);
      out += roll == 0 ? ".\n" : roll == 1 ? ", " : " ";
    }
    return out;
  }

  static std::string diff(std::mt19937_64& rng, size_t size) {
    std::string out = "From " + hex(rng).substr(0, 40)
                      + " Mon Sep 17 00:00:00 2001\nSubject: [PATCH] ";
    out += text(rng, 60);
    out += "\n---\n src/relay.cpp | 12 ++++++------\n\ndiff --git a/src/relay.cpp b/src/relay.cpp\n";
    while (out.size() < size) {
      out += uniform(rng, 0, 1) == 0 ? "+  " : "-  ";
      out += text(rng, uniform(rng, 20, 70));
      out += '\n';
    }
    return out;
  }

  std::string address(std::mt19937_64& rng) const {
    return "30617:" + author(rng) + ":repo-" + std::to_string(uniform(rng, 0, 39));
  }

  void note(std::mt19937_64& rng, nostr::event& ev) const {
    ev.kind = 1;
    ev.content = text(rng, uniform(rng, 0, 3) == 0 ? uniform(rng, 300, 1100)
                                                   : uniform(rng, 20, 260));
    if (uniform(rng, 0, 1) == 0) {
      ev.tags.push_back({"e", hex(rng), "wss://relay.example.com", "root"});
      ev.tags.push_back({"p", author(rng)});
    }
    if (uniform(rng, 0, 3) == 0)
      ev.tags.push_back({"t", "topic" + std::to_string(uniform(rng, 0, 49))});
  }

  void reaction(std::mt19937_64& rng, nostr::event& ev) const {
    ev.kind = 7;
    ev.content = uniform(rng, 0, 3) == 0 ? "🤙" : "+";
    ev.tags.push_back({"e", hex(rng)});
    ev.tags.push_back({"p", author(rng)});
    ev.tags.push_back({"k", "1"});
  }

  void comment(std::mt19937_64& rng, nostr::event& ev) const {
    ev.kind = 1111;
    ev.content = text(rng, uniform(rng, 40, 450));
    auto root = hex(rng);
    ev.tags.push_back({"E", root, "", author(rng)});
    ev.tags.push_back({"K", "1621"});
    ev.tags.push_back({"e", root, "", author(rng)});
    ev.tags.push_back({"k", "1621"});
  }

  void patch(std::mt19937_64& rng, nostr::event& ev) const {
    ev.kind = 1617;
    ev.content = diff(rng, uniform(rng, 300, 1800));
    ev.tags.push_back({"a", address(rng)});
    ev.tags.push_back({"r", hex(rng).substr(0, 40)});
    ev.tags.push_back({"p", author(rng)});
    if (uniform(rng, 0, 2) == 0)
      ev.tags.push_back({"t", "root"});
    ev.tags.push_back({"commit", hex(rng).substr(0, 40)});
  }

  void issue(std::mt19937_64& rng, nostr::event& ev) const {
    ev.kind = 1621;
    ev.content = text(rng, uniform(rng, 100, 1100));
    ev.tags.push_back({"a", address(rng)});
    ev.tags.push_back({"p", author(rng)});
    ev.tags.push_back({"subject", text(rng, 40)});
    ev.tags.push_back({"t", "bug"});
  }

  void pull_request(std::mt19937_64& rng, nostr::event& ev, uint32_t kind) const {
    ev.kind = kind;
    ev.content = text(rng, uniform(rng, 50, 800));
    ev.tags.push_back({"a", address(rng)});
    ev.tags.push_back({"p", author(rng)});
    ev.tags.push_back({"c", hex(rng).substr(0, 40)});
    ev.tags.push_back({"clone", "https://git.example.com/repo.git"});
    if (kind == 1618)
      ev.tags.push_back({"subject", text(rng, 40)});
  }

  void status(std::mt19937_64& rng, nostr::event& ev) const {
    ev.kind = static_cast<uint32_t>(1630 + uniform(rng, 0, 3));
    ev.content = uniform(rng, 0, 1) == 0 ? "" : text(rng, 60);
    ev.tags.push_back({"e", hex(rng), "", "root"});
    ev.tags.push_back({"a", address(rng)});
    ev.tags.push_back({"p", author(rng)});
  }

  void article(std::mt19937_64& rng, nostr::event& ev) const {
    ev.kind = 30023;
    auto slug = "article-" + std::to_string(uniform(rng, 0, 99));
    ev.content = text(rng, uniform(rng, 600, 2600));
    ev.tags.push_back({"d", slug});
    ev.tags.push_back({"title", text(rng, 30)});
    ev.tags.push_back({"t", "topic" + std::to_string(uniform(rng, 0, 49))});
  }

  void repository(std::mt19937_64& rng, nostr::event& ev,
                  const nostr::keypair& keys) const {
    ev.kind = 30617;
    auto name = "repo-" + std::to_string(uniform(rng, 0, 39));
    ev.tags.push_back({"d", name});
    ev.tags.push_back({"name", name});
    ev.tags.push_back({"description", text(rng, uniform(rng, 40, 200))});
    ev.tags.push_back({"clone", "https://git.example.com/" + nostr::to_hex(keys.pubkey)
                                  + "/" + name + ".git"});
    ev.tags.push_back({"web", "https://git.example.com/" + name});
    ev.tags.push_back({"relays", "wss://relay.example.com", "wss://grasp.example.org"});
    ev.tags.push_back({"r", hex(rng).substr(0, 40), "euc"});
    ev.tags.push_back({"maintainers", author(rng)});
  }

  void repository_state(std::mt19937_64& rng, nostr::event& ev) const {
    ev.kind = 30618;
    ev.tags.push_back({"d", "repo-" + std::to_string(uniform(rng, 0, 39))});
    for (size_t i = uniform(rng, 2, 8); i > 0; --i)
      ev.tags.push_back({"refs/heads/branch-" + std::to_string(i), hex(rng).substr(0, 40)});
    ev.tags.push_back({"HEAD", "ref: refs/heads/main"});
  }

  void profile(std::mt19937_64& rng, nostr::event& ev) const {
    ev.kind = 0;
    // A JSON object in a string, as real profiles are.
    ev.content = "{\"name\":";
    nostr::append_json_string(ev.content, text(rng, 12));
    ev.content += ",\"about\":";
    nostr::append_json_string(ev.content, text(rng, 200));
    ev.content += ",\"picture\":\"https://img.example.com/a.png\"}";
  }

  void contacts(std::mt19937_64& rng, nostr::event& ev) const {
    ev.kind = 3;
    for (size_t i = uniform(rng, 10, 45); i > 0; --i)
      ev.tags.push_back({"p", author(rng)});
  }

  void relay_list(std::mt19937_64& rng, nostr::event& ev, uint32_t kind) const {
    ev.kind = kind;
    for (size_t i = uniform(rng, 2, 6); i > 0; --i)
      ev.tags.push_back({kind == 10002 ? "r" : "relay",
                         "wss://relay" + std::to_string(uniform(rng, 0, 19)) + ".example.com"});
  }

  std::vector<nostr::keypair> keys_;
};

} // namespace ferry::bench
