// Fuzzes a node's index memtable (store/live_index_memtable.hpp): inserts,
// reads and iterator moves in any order, each iterator checked against a
// sorted copy of the entries there were when it was opened. Its view is two
// sorted arrays merged as it is read; `recent` is merged into `base` past 4
// entries here, so short inputs reach every path.
//
// The input is a list of operations, one byte each, some followed by a key
// in memtable_sort's form (`[share][length][bytes]`: the first 4 * share
// bytes of the previous key, then `length` bytes of the input).

#include "fuzz/fuzz_check.hpp"
#include "fuzz/memtable_entries.hpp"
#include "store/live_index_memtable.hpp"

#include <algorithm>
#include <deque>
#include <memory>
#include <string>
#include <vector>

using namespace ferry;

namespace {

using entry_list = std::vector<const char*>;

/// What an iterator must show: the entries of its view, sorted, and where
/// it is in them (`at == size` when not valid).
struct model_iterator {
  std::unique_ptr<rocksdb::MemTableRep::Iterator> it;
  entry_list sorted;
  size_t at = 0;

  void check() const {
    fuzz::require(it->Valid() == (at < sorted.size()), "valid where the model is");
    if (at < sorted.size())
      fuzz::require(it->key() == sorted[at], "the model's entry");
  }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::internal_key_order order;
  auto before = [&order](const char* a, const char* b) { return order(a, b) < 0; };
  store::live_index_memtable_factory factory{4};
  std::unique_ptr<rocksdb::MemTableRep> rep{
    factory.CreateMemTableRep(order, nullptr, nullptr, nullptr)};
  std::deque<std::string> entries;
  entry_list inserted;
  std::vector<model_iterator> iterators;
  fuzz::key_reader keys{data, size};
  size_t at = 0;
  while (at < size && inserted.size() < 2048) {
    const uint8_t op = data[at++];
    keys.at = at;
    switch (op % 8) {
      case 0:
      case 1:
      case 2: { // insert
        auto key = keys.next();
        at = keys.at;
        entries.push_back(fuzz::encode_entry(key, entries.size()));
        inserted.push_back(entries.back().data());
        rep->Insert(const_cast<char*>(entries.back().data()));
        break;
      }
      case 3: { // open an iterator: it sees what is there now
        if (iterators.size() >= 8)
          iterators.erase(iterators.begin());
        model_iterator m;
        m.it.reset(rep->GetIterator(nullptr));
        m.sorted = inserted;
        std::sort(m.sorted.begin(), m.sorted.end(), before);
        m.at = m.sorted.size();
        m.check();
        iterators.push_back(std::move(m));
        break;
      }
      case 4: { // seek to a key, or before it
        if (iterators.empty() || at >= size)
          break;
        auto& m = iterators[data[at++] % iterators.size()];
        keys.at = at;
        auto target = fuzz::encode_entry(keys.next(), size);
        at = keys.at;
        auto internal = order.decode_key(target.data());
        auto after = [&](const char* e) { return order(e, internal) <= 0; };
        auto not_before = [&](const char* e) { return order(e, internal) < 0; };
        if (op & 8) {
          m.it->Seek(internal, nullptr);
          m.at = static_cast<size_t>(
            std::partition_point(m.sorted.begin(), m.sorted.end(), not_before)
            - m.sorted.begin());
        } else {
          m.it->SeekForPrev(internal, nullptr);
          auto n = static_cast<size_t>(
            std::partition_point(m.sorted.begin(), m.sorted.end(), after)
            - m.sorted.begin());
          m.at = n == 0 ? m.sorted.size() : n - 1;
        }
        m.check();
        break;
      }
      case 5: { // first or last
        if (iterators.empty() || at >= size)
          break;
        auto& m = iterators[data[at++] % iterators.size()];
        if (op & 8) {
          m.it->SeekToFirst();
          m.at = 0;
        } else {
          m.it->SeekToLast();
          m.at = m.sorted.empty() ? 0 : m.sorted.size() - 1;
        }
        m.check();
        break;
      }
      case 6: { // next or previous, from a valid position only
        if (iterators.empty() || at >= size)
          break;
        auto& m = iterators[data[at++] % iterators.size()];
        if (m.at >= m.sorted.size())
          break;
        if (op & 8) {
          m.it->Next();
          ++m.at;
        } else {
          m.it->Prev();
          m.at = m.at == 0 ? m.sorted.size() : m.at - 1;
        }
        m.check();
        break;
      }
      default: { // contains: every entry inserted, and no other
        if (!inserted.empty() && at < size)
          fuzz::require(rep->Contains(inserted[data[at++] % inserted.size()]),
                        "contains what was inserted");
        auto absent = fuzz::encode_entry("absent", size + 1);
        fuzz::require(!rep->Contains(absent.data()), "contains nothing else");
        break;
      }
    }
  }
  // A whole scan in both directions at the end.
  std::unique_ptr<rocksdb::MemTableRep::Iterator> it{rep->GetIterator(nullptr)};
  entry_list sorted = inserted;
  std::sort(sorted.begin(), sorted.end(), before);
  entry_list forward;
  for (it->SeekToFirst(); it->Valid(); it->Next())
    forward.push_back(it->key());
  fuzz::require(forward == sorted, "a scan gives every entry in order");
  entry_list backward;
  for (it->SeekToLast(); it->Valid(); it->Prev())
    backward.push_back(it->key());
  std::reverse(backward.begin(), backward.end());
  fuzz::require(backward == sorted, "a backward scan gives them in reverse");
  return 0;
}
