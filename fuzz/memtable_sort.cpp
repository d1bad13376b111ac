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
#include "fuzz/memtable_entries.hpp"
#include "store/memtable_rep_parts.hpp"

#include <algorithm>
#include <string>
#include <vector>

using namespace ferry;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> entries;
  fuzz::key_reader keys{data, size};
  while (keys.more() && entries.size() < 4096)
    entries.push_back(fuzz::encode_entry(keys.next(), entries.size()));
  fuzz::internal_key_order order;
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
