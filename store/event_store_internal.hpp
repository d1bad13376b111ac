#pragma once

// What the event store's sources share: event_store.cpp (opening, flushing,
// disk space), event_store_query.cpp (reading) and event_store_write.cpp
// (writing). Private to store/: nothing outside it includes this header.

#include "store/event_store.hpp"

#include "messages/error.hpp"
#include "store/column_families.hpp"
#include "store/keys.hpp"

#include <rocksdb/db.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>
#include <rocksdb/perf_level.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::store {

inline caf::error storage_error(const rocksdb::Status& s) {
  return caf::make_error(ec::storage_failure, s.ToString());
}

inline rocksdb::Slice slice_of(const bytes32& x) {
  return {reinterpret_cast<const char*>(x.data()), x.size()};
}

inline std::string_view view_of(const rocksdb::Slice& s) {
  return {s.data(), s.size()};
}

/// The families only ever range-scanned, one key per event and index entry.
/// A bulk import gives them memtables sorted only at their flush
/// (store/index_memtable.hpp, event_store::open).
inline bool is_index_family(cf family) {
  switch (family) {
    case cf::by_created:
    case cf::by_kind:
    case cf::by_author:
    case cf::by_author_kind:
    case cf::by_tag:
    case cf::by_expiration:
      return true;
    default:
      return false;
  }
}

/// Follows RocksDB's background error state. Called on RocksDB's threads
/// (a writer's, a flush's, the SstFileManager's recovery thread).
class error_listener : public rocksdb::EventListener {
public:
  void OnBackgroundError(rocksdb::BackgroundErrorReason,
                         rocksdb::Status* bg_error) override {
    if (bg_error->ok())
      return;
    pending.store(true);
    if (bg_error->IsNoSpace())
      no_space.store(true);
  }

  void OnErrorRecoveryEnd(
    const rocksdb::BackgroundErrorRecoveryInfo& info) override {
    if (info.new_bg_error.ok())
      clear();
  }

  void clear() {
    pending.store(false);
    no_space.store(false);
  }

  /// A background error is set: the DB refuses writes until it clears.
  std::atomic<bool> pending{false};
  /// ... and it is (or began as) an out-of-space error.
  std::atomic<bool> no_space{false};
};

/// RocksDB counts each step of a read or write in thread-local perf counters
/// unless the thread says not to. Nothing in Ferry reads them, and with the
/// shared librocksdb every count is a __tls_get_addr call (9% of the profile
/// of reading a million index keys). Each store call switches them off for
/// the thread it runs on, once.
inline void perf_counters_off_for_this_thread() {
  thread_local bool off = false;
  if (!off) {
    rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable);
    off = true;
  }
}

struct event_store::impl {
  rocksdb::DB* db = nullptr;
  /// Ferry's families (indexed by `cf`) followed by any unknown ones found on
  /// disk, which RocksDB insists on opening too.
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::WriteOptions write_options;
  std::string path;
  /// A secondary instance's own directory (removed on close); empty for the
  /// node's read-write store.
  std::string secondary_path;
  uint64_t reserve_bytes = 0;
  /// Opened by `ferry import` (store_options::bulk_import).
  bool bulk_import = false;
  std::shared_ptr<error_listener> errors = std::make_shared<error_listener>();
  /// Set by the writer's thread, read by any: space_problem() without a lock.
  std::atomic<bool> disk_full{false};
  mutable std::mutex space_mutex;
  std::string space_problem;

  ~impl();

  rocksdb::ColumnFamilyHandle* h(cf family) const {
    return handles[static_cast<size_t>(family)];
  }

  void set_space_problem(std::string text) {
    std::lock_guard<std::mutex> guard{space_mutex};
    space_problem = std::move(text);
    disk_full.store(!space_problem.empty());
  }

  /// A failed commit: out of space (now, or RocksDB is still read-only from
  /// an earlier ENOSPC) makes the disk full until `recheck_space` says not.
  caf::error write_failed(const rocksdb::Status& s);

  /// After a bulk import: compacts `by_created` into one sorted run.
  caf::error merge_created_index();
};

} // namespace ferry::store
