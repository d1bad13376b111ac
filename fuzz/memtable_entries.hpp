#pragma once

// Memtable entries as RocksDB lays them out, its memtable comparator over
// them, and keys read from a fuzzer's input; for the memtable fuzzers
// (fuzz/memtable_*.cpp).

#include "store/memtable_rep_parts.hpp"

#include <rocksdb/memtablerep.h>
#include <rocksdb/slice.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace ferry::fuzz {

constexpr size_t footer = store::memtable_parts::internal_footer;

/// A memtable entry as RocksDB lays it out: varint32 length of the internal
/// key, the user key, then 8 bytes packing the sequence number and type.
inline std::string encode_entry(std::string_view user_key, uint64_t sequence) {
  std::string entry;
  auto length = static_cast<uint32_t>(user_key.size() + footer);
  while (length >= 0x80) {
    entry.push_back(static_cast<char>((length & 0x7f) | 0x80));
    length >>= 7;
  }
  entry.push_back(static_cast<char>(length));
  entry.append(user_key);
  uint64_t packed = (sequence << 8) | 1; // kTypeValue
  for (int i = 0; i < 8; ++i)
    entry.push_back(static_cast<char>(packed >> (8 * i)));
  return entry;
}

/// RocksDB's memtable comparator over those entries.
class internal_key_order final : public rocksdb::MemTableRep::KeyComparator {
public:
  DecodedType decode_key(const char* entry) const override {
    uint32_t length = 0;
    int shift = 0;
    auto* p = reinterpret_cast<const unsigned char*>(entry);
    while (*p & 0x80) {
      length |= static_cast<uint32_t>(*p++ & 0x7f) << shift;
      shift += 7;
    }
    length |= static_cast<uint32_t>(*p++) << shift;
    return {reinterpret_cast<const char*>(p), length};
  }

  int operator()(const char* a, const char* b) const override {
    return compare(decode_key(a), decode_key(b));
  }

  int operator()(const char* a, const rocksdb::Slice& b) const override {
    return compare(decode_key(a), b);
  }

private:
  static uint64_t packed(const rocksdb::Slice& internal_key) {
    uint64_t result = 0;
    std::memcpy(&result, internal_key.data() + internal_key.size() - footer, footer);
    return result;
  }

  static int compare(const rocksdb::Slice& a, const rocksdb::Slice& b) {
    rocksdb::Slice user_a{a.data(), a.size() - footer};
    rocksdb::Slice user_b{b.data(), b.size() - footer};
    if (auto c = user_a.compare(user_b); c != 0)
      return c;
    auto pa = packed(a);
    auto pb = packed(b);
    return pa > pb ? -1 : pa < pb ? 1 : 0;
  }
};

/// Keys from the input, each `[share][length][bytes]`: the first 4 * share
/// bytes of the previous key, then `length` bytes of the input. So keys
/// share long prefixes, are prefixes of each other, differ by trailing
/// zeros, and repeat.
struct key_reader {
  const uint8_t* data;
  size_t size;
  size_t at = 0;
  std::string previous;

  key_reader(const uint8_t* d, size_t n) : data(d), size(n) {
  }

  /// Whether a key's two bytes of head are left.
  bool more() const {
    return at + 2 <= size;
  }

  /// The next key (empty past the end of the input).
  std::string next() {
    if (!more()) {
      at = size;
      return {};
    }
    size_t share = std::min<size_t>(4 * size_t{data[at]}, previous.size());
    size_t length = std::min<size_t>(data[at + 1], size - at - 2);
    std::string key = previous.substr(0, share);
    key.append(reinterpret_cast<const char*>(data + at + 2), length);
    at += 2 + length;
    previous = key;
    return key;
  }
};

} // namespace ferry::fuzz
