#include "store/event_store.hpp"

#include "store/change_log.hpp"
#include "store/event_store_internal.hpp"
#include "store/hashed_memtable.hpp"
#include "store/index_memtable.hpp"
#include "store/live_index_memtable.hpp"

#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/env.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/write_buffer_manager.h>

#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace ferry::store {

namespace {

/// Bytes an unprivileged writer may still use on the filesystem of `path`;
/// nullopt when statvfs fails (then RocksDB's own errors decide).
std::optional<uint64_t> free_bytes(const std::string& path) {
  struct statvfs fs;
  if (::statvfs(path.c_str(), &fs) != 0)
    return std::nullopt;
  return static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
}

/// RocksDB's log lines go to the node's log instead of a LOG file in the
/// store directory. That file is written through a WritableFileWriter which,
/// after one failed append (ENOSPC), fails an assertion on the next line
/// (`AssertFalseAndGetStatusForPrevError`; Debian keeps assertions on): the
/// node died with SIGABRT as soon as the disk filled. Our sink cannot.
class forwarding_logger : public rocksdb::Logger {
public:
  explicit forwarding_logger(
    std::function<void(bool, std::string_view)> sink)
    : rocksdb::Logger(rocksdb::InfoLogLevel::INFO_LEVEL),
      sink_(std::move(sink)) {
  }

  using rocksdb::Logger::Logv;

  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }

  void Logv(const rocksdb::InfoLogLevel level, const char* format,
            va_list ap) override {
    if (!sink_ || level < GetInfoLogLevel())
      return;
    char line[1024];
    auto n = std::vsnprintf(line, sizeof line, format, ap);
    if (n < 0)
      return;
    std::string_view text{line, std::min<size_t>(static_cast<size_t>(n),
                                                 sizeof line - 1)};
    while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
      text.remove_suffix(1);
    // HEADER_LEVEL ranks above FATAL but is the options dump at open.
    auto problem = level >= rocksdb::InfoLogLevel::WARN_LEVEL
                   && level != rocksdb::InfoLogLevel::HEADER_LEVEL;
    if (!text.empty())
      sink_(problem, text);
  }

private:
  std::function<void(bool, std::string_view)> sink_;
};

} // namespace

// -- impl ------------------------------------------------------------------------

event_store::impl::~impl() {
  if (db == nullptr)
    return;
  // A destructor cannot report failures; `flush()` is the checked path.
  // After a failed WAL append, FlushWAL asserts (SIGABRT): the WAL is
  // replayed on the next open instead.
  if (secondary_path.empty() && !errors->pending.load())
    db->FlushWAL(true);
  rocksdb::CancelAllBackgroundWork(db, true);
  for (auto* h : handles)
    db->DestroyColumnFamilyHandle(h);
  db->Close();
  delete db;
  if (!secondary_path.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(secondary_path, ignored);
  }
}

caf::error event_store::impl::write_failed(const rocksdb::Status& s) {
  if (s.IsNoSpace() || errors->no_space.load()) {
    auto free = free_bytes(path);
    set_space_problem("RocksDB: " + s.ToString() + " ("
                      + (free ? std::to_string(*free) : std::string{"?"})
                      + " bytes free on " + path + ")");
  }
  return storage_error(s);
}

// -- event_store -------------------------------------------------------------------

event_store::~event_store() = default;

namespace {

/// Opens the secondary instance behind `store_options::beside_running_node`
/// into `db` and `handles`, its own files in a new `secondary_path`, and
/// checks that the store's schema is this build's.
caf::error open_secondary(rocksdb::DBOptions db_options,
                          const std::vector<rocksdb::ColumnFamilyDescriptor>& descriptors,
                          const std::string& path,
                          std::vector<rocksdb::ColumnFamilyHandle*>& handles,
                          rocksdb::DB*& db, std::string& secondary_path) {
  // The secondary keeps every SST file open: the node may compact one away
  // while it is read, and an open file stays readable.
  db_options.max_open_files = -1;
  db_options.create_if_missing = false;
  db_options.create_missing_column_families = false;
  std::string dir = (std::filesystem::temp_directory_path()
                     / "ferry-reader-XXXXXX")
                      .string();
  if (::mkdtemp(dir.data()) == nullptr)
    return caf::make_error(ec::storage_failure,
                           "cannot create a directory for reading beside the "
                           "node: " + dir + ": " + std::strerror(errno));
  secondary_path = dir;
  auto s = rocksdb::DB::OpenAsSecondary(db_options, path, dir, descriptors,
                                        &handles, &db);
  if (s.ok())
    s = db->TryCatchUpWithPrimary();
  if (!s.ok())
    return storage_error(s);
  std::string version;
  s = db->Get(rocksdb::ReadOptions{}, handles[static_cast<size_t>(cf::meta)],
              std::string(schema_version_key), &version);
  if (!s.ok() && !s.IsNotFound())
    return storage_error(s);
  if (version != std::to_string(schema_version))
    return caf::make_error(
      ec::storage_failure,
      "store schema version '" + version + "' is not this build's ("
        + std::to_string(schema_version)
        + "): stop the node and open the store with this build first");
  return {};
}

} // namespace

caf::expected<std::unique_ptr<event_store>>
event_store::open(const store_options& opts) {
  std::unique_ptr<event_store> result{new event_store};
  result->impl_ = std::make_unique<impl>();
  auto& st = *result->impl_;
  st.write_options.sync = opts.sync_writes;
  st.path = opts.path;
  st.reserve_bytes = opts.reserve_bytes;
  st.bulk_import = opts.bulk_import;

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = 2;
  // Two flush threads (two jobs alone make RocksDB run one): `flush()` writes
  // every family's memtable, after an import up to the whole write budget,
  // and one thread left the other core idle while it did.
  db_options.max_background_flushes = 2;
  db_options.max_background_compactions = 1;
  // Each family's table files open on the thread that opens the store:
  // RocksDB's default (16) starts and joins 15 threads per family at every
  // open, whatever the family holds: 300 threads for our 20 families, which
  // was most of the time `ferry import` and a node took to open a store.
  db_options.max_file_opening_threads = 1;
  // What RocksDB 7.8 does on a full disk (paranoid_checks on, the default;
  // observed on a 16 MiB tmpfs, tests/store/disk_full_test.cpp):
  // - a failed WAL append (kWriteCallback) or memtable flush (kFlush) is a
  //   HARD error: the DB turns read-only, every later Write returns the same
  //   NoSpace status without touching the WAL; reads go on; nothing
  //   acknowledged is lost (the WAL and SSTs written so far replay on open);
  // - a failed compaction is a SOFT error: writes go on, the compaction
  //   waits for space;
  // - for NoSpace errors the SstFileManager (DB::Open makes one) polls the
  //   free space every ~5 s and, once there is room, flushes the memtables
  //   into a new WAL generation and clears the error
  //   (OnErrorRecoveryEnd with an OK status). DB::Resume() while that runs
  //   answers Busy; outside it, it does the same recovery at once;
  // - the old WAL writer keeps its error: FlushWAL on it asserts (SIGABRT),
  //   so shutdown skips FlushWAL while an error is pending (~impl, flush()).
  // The writer stops well before this: `check_space` refuses events once
  // the free space falls below `reserve_bytes`, so the WAL, the MANIFEST and
  // flushes keep room; the hard error is the fallback for a disk filled by
  // someone else between two checks.
  // Vector and hashed memtables take no concurrent inserts. Events have one
  // writer, and the other writes (sync state, peers) are few.
  db_options.allow_concurrent_memtable_write = false;
  db_options.info_log = std::make_shared<forwarding_logger>(opts.log);
  db_options.listeners.push_back(st.errors);

  // Every column family fills a memtable of its own: without a common
  // budget, an import of a million events held ~1 GB of them (bench_scale).
  // Together they now stay within four write buffers; the fullest is
  // flushed first.
  db_options.write_buffer_manager = std::make_shared<rocksdb::WriteBufferManager>(
    4 * (opts.write_buffer_mb << 20));
  auto cache = rocksdb::NewLRUCache(opts.block_cache_mb << 20);
  auto family_options = [&](bool bloom) {
    rocksdb::ColumnFamilyOptions o;
    o.write_buffer_size = opts.write_buffer_mb << 20;
    rocksdb::BlockBasedTableOptions t;
    t.block_cache = cache;
    if (bloom) {
      t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
      // Most lookups on the ingest path ask for keys that do not exist (a new
      // id, no deletion record): a memtable bloom answers them without a
      // skiplist search, which profiles showed as a large part of import.
      o.memtable_whole_key_filtering = true;
      o.memtable_prefix_bloom_size_ratio = 0.02;
    }
    o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
    return o;
  };

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (size_t i = 0; i < cf_count; ++i) {
    auto family = static_cast<cf>(i);
    // Point lookups (id, slot, deletion record, refusal) profit from bloom
    // filters; the index families are only ever range-scanned. Every event
    // from a remote or an import asks `refused` first, nearly always for a
    // key it does not hold: with 50,000 refusals on disk that Get took
    // 1.2 us without a filter, 0.24 us with one.
    bool bloom = family == cf::events || family == cf::replaceable
                 || family == cf::deleted || family == cf::refused;
    auto options = family_options(bloom);
    // Index keys are a prefix, a time and a random id: what block prefix
    // compression leaves of them Snappy barely shrinks (the 100k realistic
    // corpus: 106 MB of store uncompressed, 105 MB compressed), yet every
    // flush and compaction paid for trying (~5% of an import's instructions
    // outside signature checks) and every block read decompressed them.
    if (is_index_family(family))
      options.compression = rocksdb::kNoCompression;
    // The other families (the events' JSON above all) are compressed from L1
    // down, not in L0: a flush then writes the memtable as it is, and the
    // compaction that moves L0 on reads it without decompressing. Snappy
    // happens once, where the data stays. The 100k realistic corpus's import:
    // 7.96 -> 7.61 s of CPU (median of 6 alternated pairs); its store is
    // 128 MB instead of 106 MB until its L0 files are compacted. Recent
    // events, the ones REQs and a catch-up's duplicate checks read most,
    // are read without decompressing too.
    else
      options.compression_per_level = {rocksdb::kNoCompression,
                                       rocksdb::kSnappyCompression};
    // An import's index families are not read while they fill: appended,
    // sorted once at the flush (store/index_memtable.hpp). A node's are read
    // by REQs, but far less often than written in a catch-up: appended, and
    // sorted by whoever reads next (store/live_index_memtable.hpp).
    if (is_index_family(family)) {
      if (opts.bulk_import)
        options.memtable_factory = std::make_shared<index_memtable_factory>();
      else
        options.memtable_factory = std::make_shared<live_index_memtable_factory>();
    }
    // `events` is only ever read by id while its memtable fills (REQs read
    // it by the ids an index gave them; duplicates, deletion targets): a
    // hashed memtable (store/hashed_memtable.hpp), not a skip list searched
    // through cold memory for every random id. A scan of `events` would
    // sort a copy of the memtable each time; nothing scans it. 100k
    // realistic corpus, alternated pairs: `ferry import` 6.39 -> 6.22 s of
    // CPU (means; 6 of 6 pairs lower), a node's NIP-77 catch-up of an empty
    // store 9.20 -> 8.98 s of CPU and 6.02 -> 5.78 s (medians; 4 of 4).
    if (family == cf::events)
      options.memtable_factory = std::make_shared<hashed_memtable_factory>();
    descriptors.emplace_back(std::string(cf_names[i]), std::move(options));
  }
  // A new store's directory is made here: RocksDB makes it too, but warns
  // first that it could not list it. Where it cannot be made, Open says why.
  std::error_code ignored;
  if (!opts.beside_running_node)
    std::filesystem::create_directories(opts.path, ignored);
  bool fresh = !std::filesystem::exists(
    std::filesystem::path{opts.path} / "CURRENT", ignored);
  std::vector<std::string> on_disk;
  if (!fresh && rocksdb::DB::ListColumnFamilies(db_options, opts.path, &on_disk)
                  .ok())
    for (const auto& name : on_disk)
      if (std::find(cf_names.begin(), cf_names.end(), name) == cf_names.end())
        descriptors.emplace_back(name, family_options(false));

  if (opts.beside_running_node) {
    if (auto err = open_secondary(db_options, descriptors, opts.path,
                                  st.handles, st.db, st.secondary_path))
      return err;
    return result;
  }
  rocksdb::Status s;
  if (fresh) {
    // A new store opens with the default family alone and creates the others
    // in one call: created by Open, each family rewrote the whole OPTIONS
    // file (87 KB, 20 times; a tenth of a second per new store), created
    // together RocksDB writes it once. A crash in between leaves a store with
    // the default family, which the next open completes as any other.
    s = rocksdb::DB::Open(db_options, opts.path, {descriptors.front()},
                          &st.handles, &st.db);
    std::vector<rocksdb::ColumnFamilyHandle*> created;
    if (s.ok())
      s = st.db->CreateColumnFamilies({descriptors.begin() + 1,
                                       descriptors.end()},
                                      &created);
    st.handles.insert(st.handles.end(), created.begin(), created.end());
  } else {
    s = rocksdb::DB::Open(db_options, opts.path, descriptors, &st.handles,
                          &st.db);
  }
  if (!s.ok())
    return storage_error(s);

  std::string version;
  s = st.db->Get(rocksdb::ReadOptions{}, st.h(cf::meta),
                 std::string(schema_version_key), &version);
  if (s.IsNotFound()) {
    s = st.db->Put(st.write_options, st.h(cf::meta),
                   std::string(schema_version_key),
                   std::to_string(schema_version));
    if (!s.ok())
      return storage_error(s);
  } else if (!s.ok()) {
    return storage_error(s);
  } else {
    uint32_t found = 0;
    auto [end, err] = std::from_chars(version.data(),
                                      version.data() + version.size(), found);
    if (err != std::errc{} || end != version.data() + version.size())
      return caf::make_error(ec::storage_failure,
                             "store schema version is unreadable: '" + version
                               + "'");
    if (found > schema_version)
      return caf::make_error(ec::storage_failure,
                             "store schema version " + version
                               + " is newer than this build supports ("
                               + std::to_string(schema_version)
                               + "); use a newer Ferry");
    // Rebuilt whole at each open until the version below is written: a
    // backfill cut short (crash, full disk) is completed by the next open.
    if (found < 2)
      if (auto err = backfill_change_log(*result))
        return err;
    if (found < schema_version) {
      s = st.db->Put(st.write_options, st.h(cf::meta),
                     std::string(schema_version_key),
                     std::to_string(schema_version));
      if (!s.ok())
        return storage_error(s);
    }
  }
  return result;
}

uint64_t event_store::approximate_event_count() const {
  uint64_t n = 0;
  impl_->db->GetIntProperty(impl_->h(cf::events), "rocksdb.estimate-num-keys", &n);
  return n;
}

event_store::compaction_backlog event_store::compaction() const {
  compaction_backlog backlog;
  // A property of the whole database, whichever family is asked.
  impl_->db->GetIntProperty(impl_->h(cf::events), "rocksdb.num-running-compactions",
                            &backlog.running);
  for (uint32_t i = 0; i < cf_count; ++i) {
    uint64_t bytes = 0;
    if (impl_->db->GetIntProperty(impl_->h(static_cast<cf>(i)),
                                  "rocksdb.estimate-pending-compaction-bytes", &bytes))
      backlog.pending_bytes += bytes;
  }
  return backlog;
}

rocksdb::DB* event_store::db() const {
  return impl_->db;
}

rocksdb::ColumnFamilyHandle* event_store::handle(cf family) const {
  return impl_->h(family);
}

caf::error event_store::flush() {
  auto& st = *impl_;
  std::vector<rocksdb::ColumnFamilyHandle*> families(
    st.handles.begin(), st.handles.begin() + cf_count);
  // RocksDB flushes a list of families one after the other, each waited
  // for: start them all first, so both flush threads work, then wait. The
  // costliest go first, and entries measure that cost better than bytes: an
  // import's index families sort their entries at the flush (`by_tag`, a
  // quarter of a million per 100k events, took 231 ms), while `events`
  // writes 30 MB of JSON as it lies (31 ms). Ordered by bytes, `events`
  // went first and the flush of the 100k corpus ended with one thread
  // idle; by entries the two threads end closer together.
  std::vector<std::pair<uint64_t, rocksdb::ColumnFamilyHandle*>> by_cost;
  for (auto* family : families) {
    uint64_t active = 0;
    uint64_t immutable = 0;
    st.db->GetIntProperty(family, rocksdb::DB::Properties::kNumEntriesActiveMemTable,
                          &active);
    st.db->GetIntProperty(family, rocksdb::DB::Properties::kNumEntriesImmMemTables,
                          &immutable);
    by_cost.emplace_back(active + immutable, family);
  }
  std::stable_sort(by_cost.begin(), by_cost.end(),
                   [](const auto& x, const auto& y) {
                     return x.first > y.first;
                   });
  // The family with the fewest entries (but some) flushes last, alone. A
  // flush records in the MANIFEST the oldest write-ahead log the store still
  // needs, counted before its result is installed: two flushes installed at
  // once each counted the other's family as still needing the old log, and
  // the store closed naming a log every family had flushed (replayed at each
  // open, on disk until a later flush; after `ferry import`, in ~1 run of 6,
  // as large as the import's last memtables). Alone, the last flush counts
  // every other family's result.
  auto held = std::find_if(by_cost.rbegin(), by_cost.rend(),
                           [](const auto& cost) { return cost.first > 0; });
  auto* last = held == by_cost.rend() ? nullptr : held->second;
  rocksdb::FlushOptions start;
  start.wait = false;
  for (auto& [entries, family] : by_cost) {
    if (family == last)
      continue;
    auto s = st.db->Flush(start, family);
    if (!s.ok())
      return st.write_failed(s);
  }
  families.erase(std::remove(families.begin(), families.end(), last), families.end());
  auto s = st.db->Flush(rocksdb::FlushOptions{}, families);
  if (s.ok() && last != nullptr)
    s = st.db->Flush(rocksdb::FlushOptions{}, last);
  if (!s.ok())
    return st.write_failed(s);
  if (st.errors->pending.load())
    return caf::make_error(ec::storage_failure,
                           "RocksDB holds a background error; the WAL is "
                           "replayed on the next open");
  s = st.db->FlushWAL(true);
  if (!s.ok())
    return storage_error(s);
  if (st.bulk_import)
    return st.merge_created_index();
  return {};
}

caf::error event_store::impl::merge_created_index() {
  // An import leaves `by_created` in overlapping L0 files, one per memtable
  // flush (two after a million events), which no compaction merges until
  // enough later flushes pile up. Reading the family end to end (the NIP-77
  // set of `{}`, REQs by time alone) then merges the files key by key: one
  // sorted run took the set of 901,498 events ~15% less CPU to build (~20%
  // with RocksDB's perf counters off, event_store_internal.hpp). The
  // compaction rewrites the whole family, ~0.9 s per million events, so an
  // import that flushed it only once (a small one) leaves it as it is.
  std::string l0_files;
  if (!db->GetProperty(h(cf::by_created), "rocksdb.num-files-at-level0", &l0_files))
    return {};
  if (l0_files == "0" || l0_files == "1")
    return {};
  auto s = db->CompactRange(rocksdb::CompactRangeOptions{}, h(cf::by_created),
                            nullptr, nullptr);
  if (!s.ok())
    return write_failed(s);
  return {};
}

std::string event_store::space_problem() const {
  auto& st = *impl_;
  if (!st.disk_full.load())
    return {};
  std::lock_guard<std::mutex> guard{st.space_mutex};
  return st.space_problem;
}

std::string event_store::check_space() {
  auto& st = *impl_;
  if (st.disk_full.load() || st.reserve_bytes == 0)
    return space_problem();
  auto free = free_bytes(st.path);
  if (!free || *free >= st.reserve_bytes)
    return {};
  st.set_space_problem(std::to_string(*free) + " bytes free on " + st.path
                       + ", below the reserve of "
                       + std::to_string(st.reserve_bytes) + " bytes");
  return space_problem();
}

bool event_store::recheck_space() {
  auto& st = *impl_;
  if (!st.disk_full.load())
    return true;
  auto free = free_bytes(st.path);
  // A quarter above the reserve, so a disk at the edge does not flap; and at
  // least 1 MiB, so Resume() never runs on a disk that is still full.
  auto needed = std::max<uint64_t>(st.reserve_bytes + st.reserve_bytes / 4,
                                   1 << 20);
  if (!free || *free < needed)
    return false;
  if (st.errors->pending.load()) {
    // Busy while the SstFileManager's own recovery runs: it ends the error
    // by itself (OnErrorRecoveryEnd), and the next recheck sees that.
    if (!st.db->Resume().ok())
      return false;
    st.errors->clear();
  }
  st.set_space_problem({});
  return true;
}

bool event_store::background_error() const {
  return impl_->errors->pending.load();
}

} // namespace ferry::store
