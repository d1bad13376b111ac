// Fuzzes the sort of Ferry's memtables (store/memtable_rep_parts.hpp): for
// any set of entries, sorting by 8-byte chunks of the user keys must give
// exactly the order of a comparison sort through RocksDB's memtable
// comparator (user keys bytewise, then newer sequence numbers first).
//
// The input is a list of keys, each `[share][length][bytes]`: the first
// 4 * share bytes of the previous key, then `length` bytes of the input. So
// keys share long prefixes (beyond the 256 bytes the chunk sort follows),
// are prefixes of each other, differ by trailing zeros, and repeat (a key's
// versions get distinct sequence numbers).

#include "fuzz/fuzz_check.hpp"
#include "store/memtable_rep_parts.hpp"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

using namespace ferry;

namespace {

constexpr size_t footer = store::memtable_parts::internal_footer;

/// A memtable entry as RocksDB lays it out: varint32 length of the internal
/// key, the user key, then 8 bytes packing the sequence number and type.
std::string encode_entry(std::string_view user_key, uint64_t sequence) {
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

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> entries;
  std::string previous;
  for (size_t at = 0; at + 2 <= size && entries.size() < 4096;) {
    size_t share = std::min<size_t>(4 * size_t{data[at]}, previous.size());
    size_t length = std::min<size_t>(data[at + 1], size - at - 2);
    std::string key = previous.substr(0, share);
    key.append(reinterpret_cast<const char*>(data + at + 2), length);
    at += 2 + length;
    entries.push_back(encode_entry(key, entries.size()));
    previous = std::move(key);
  }
  internal_key_order order;
  store::memtable_parts::sorted_entries chunked;
  for (const auto& e : entries)
    chunked.push_back(e.data());
  auto expected = chunked;
  store::memtable_parts::sort_by_comparator(chunked, order);
  std::sort(expected.begin(), expected.end(),
            [&order](const char* a, const char* b) { return order(a, b) < 0; });
  fuzz::require(chunked == expected, "the chunk sort orders as the comparator does");
  return 0;
}
