#include "store/expiry_window.hpp"

#include "store/column_families.hpp"
#include "store/keys.hpp"

#include <rocksdb/db.h>

#include <algorithm>
#include <memory>
#include <string>

namespace ferry::store {

bool expires_within(const event_store& store, int64_t after, int64_t through) {
  if (through <= after)
    return false;
  // Keys are BE64(expiration) · id: the window is [after + 1, through + 1).
  std::string lower;
  std::string upper;
  put_fixed64(lower, static_cast<uint64_t>(std::max<int64_t>(after + 1, 0)));
  put_fixed64(upper, static_cast<uint64_t>(std::max<int64_t>(through + 1, 0)));
  rocksdb::Slice upper_slice = upper;
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(
    store.db()->NewIterator(ro, store.handle(cf::by_expiration)));
  it->Seek(lower);
  // A read error counts as an event expiring: the caller then reads afresh.
  return it->Valid() || !it->status().ok();
}

} // namespace ferry::store
