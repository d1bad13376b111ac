#include "actors/relay/item_set_cache.hpp"

#include "actors/runtime/metrics.hpp"
#include "messages/error.hpp"
#include "net/thread_name.hpp"

#include <rocksdb/db.h>

#include <algorithm>
#include <map>

namespace ferry {

namespace neg = nostr::negentropy;

/// The budget and the table of item sets. Shared by the cache, every lease
/// and every set's deleter, so whichever lets go last may free it.
struct item_set_lease::ledger {
  std::mutex mtx;
  /// Invariant: `counts.bytes` is the sum of `memory_bytes()` of the live
  /// sets plus `neg_session_bytes` per live lease, never above `max_bytes`.
  item_set_cache_stats counts;
  /// Tells a set's entry from a later one under the same key.
  uint64_t next_generation = 1;

  struct entry {
    uint64_t generation = 0;
    /// Set once built. Weak: sessions own sets, the table only finds them.
    std::weak_ptr<const neg::item_set> items;
    /// Who waits for the set: never empty while it is being built, empty
    /// afterwards.
    std::vector<item_set_cache::callback> waiters;
  };
  /// By canonical filter JSON and store snapshot.
  std::map<std::string, entry> entries;

  /// A lease for one more session, or null when its bytes do not fit.
  /// Called with `mtx` held, so it must never drop the last reference to a
  /// set (whose deleter takes `mtx`): it copies `items` only on success.
  item_set_lease_ptr admit(const std::shared_ptr<ledger>& self,
                           const neg::item_set_ptr& items) {
    if (counts.bytes + neg_session_bytes > counts.max_bytes)
      return nullptr;
    counts.bytes += neg_session_bytes;
    ++counts.sessions;
    metrics::negentropy_memory(static_cast<int64_t>(neg_session_bytes), 1, 0);
    return std::make_unique<item_set_lease>(self, items);
  }

  std::string budget_full() const {
    return "blocked: the relay's negentropy memory budget is full ("
           + std::to_string(counts.max_bytes >> 20)
           + " MiB of item sets and sessions); try again later or narrow the "
             "filter with since/until";
  }
};

namespace {

using ledger = item_set_lease::ledger;

/// Gives a set's bytes back and forgets its entry when the last session
/// lets go of it.
struct release_set {
  std::shared_ptr<ledger> owner;
  std::string key;
  uint64_t generation = 0;
  size_t bytes = 0;

  void operator()(const neg::item_set* items) const {
    delete items;
    std::lock_guard<std::mutex> guard{owner->mtx};
    owner->counts.bytes -= bytes;
    --owner->counts.item_sets;
    metrics::negentropy_memory(-static_cast<int64_t>(bytes), 0, -1);
    auto i = owner->entries.find(key);
    if (i != owner->entries.end() && i->second.generation == generation)
      owner->entries.erase(i);
  }
};

caf::error shutting_down() {
  return caf::make_error(ec::storage_failure, "the node is shutting down");
}

std::string too_many_items(size_t max_items) {
  return "blocked: more than " + std::to_string(max_items)
         + " events match this filter (the relay's max_items per negentropy "
           "session); narrow it with since/until";
}

} // namespace

item_source store_item_source(const store::event_store& store) {
  item_source source;
  source.snapshot = [&store] { return store.db()->GetLatestSequenceNumber(); };
  source.read = [&store](const nostr::filter& f, int64_t now,
                         size_t max_items) {
    return store.negentropy_items(f, now, max_items);
  };
  return source;
}

item_set_lease::item_set_lease(std::shared_ptr<ledger> owner,
                               neg::item_set_ptr items)
  : owner_(std::move(owner)), items_(std::move(items)) {
  // nop
}

item_set_lease::~item_set_lease() {
  {
    std::lock_guard<std::mutex> guard{owner_->mtx};
    owner_->counts.bytes -= neg_session_bytes;
    --owner_->counts.sessions;
  }
  metrics::negentropy_memory(-static_cast<int64_t>(neg_session_bytes), -1, 0);
  // `items_` goes after this body, outside the lock its deleter takes.
}

item_set_cache::item_set_cache(item_source source, item_set_cache_config config)
  : source_(std::move(source)),
    config_(config),
    ledger_(std::make_shared<ledger>()) {
  ledger_->counts.max_bytes = config_.max_bytes;
  for (size_t i = 0; i < std::max<size_t>(config_.build_threads, 1); ++i)
    builders_.emplace_back([this] {
      net::name_this_thread("item-sets");
      run_builds();
    });
}

item_set_cache::~item_set_cache() {
  stop();
}

void item_set_cache::stop() {
  std::deque<build_job> dropped;
  std::vector<callback> waiters;
  std::vector<read_callback> readers;
  {
    std::lock_guard<std::mutex> guard{ledger_->mtx};
    stopping_ = true;
    dropped.swap(queue_);
    for (auto& job : dropped) {
      if (job.reader) {
        readers.push_back(std::move(job.reader));
        continue;
      }
      auto i = ledger_->entries.find(job.key);
      for (auto& w : i->second.waiters)
        waiters.push_back(std::move(w));
      ledger_->entries.erase(i);
    }
  }
  queued_.notify_all();
  // Answered first: a build still running may take a while.
  for (auto& w : waiters)
    w({nullptr, "error: the relay is shutting down"});
  for (auto& r : readers)
    r(shutting_down());
  for (auto& t : builders_)
    if (t.joinable())
      t.join();
}

item_set_cache_stats item_set_cache::stats() const {
  std::lock_guard<std::mutex> guard{ledger_->mtx};
  return ledger_->counts;
}

void item_set_cache::acquire(const nostr::filter& f, int64_t now,
                             callback done) {
  auto key = nostr::to_json(f) + " @";
  item_set_result result;
  {
    std::unique_lock<std::mutex> lock{ledger_->mtx};
    auto& led = *ledger_;
    if (stopping_) {
      result.error = "error: the relay is shutting down";
    } else if (led.counts.bytes + neg_session_bytes > led.counts.max_bytes) {
      ++led.counts.refusals;
      metrics::negentropy_refused();
      result.error = led.budget_full();
    } else {
      // The snapshot is read before the set: a write in between only makes
      // the set newer than its key says, never older, so a later session
      // sharing it misses nothing committed before its NEG-OPEN. Read
      // under the lock, after `stopping_`: once stopped, the source may be
      // gone.
      key += std::to_string(source_.snapshot());
      auto& e = led.entries[key];
      if (!e.waiters.empty()) {
        // Being built: wait for it.
        ++led.counts.shared;
        e.waiters.push_back(std::move(done));
        return;
      }
      if (auto live = e.items.lock()) {
        ++led.counts.shared;
        // Fits: the budget was checked above under the same lock. `live` is
        // not the last reference: the lease holds one more.
        result.lease = led.admit(ledger_, live);
      } else {
        // New, or its last holder is letting go right now (the deleter
        // then leaves this newer generation alone).
        e = ledger::entry{};
        e.generation = led.next_generation++;
        e.waiters.push_back(std::move(done));
        build_job job;
        job.key = key;
        job.generation = e.generation;
        job.filter = f;
        job.now = now;
        queue_.push_back(std::move(job));
        lock.unlock();
        queued_.notify_one();
        return;
      }
    }
  }
  done(std::move(result));
}

void item_set_cache::read(const nostr::filter& f, int64_t now,
                          size_t max_items, read_callback done) {
  {
    std::unique_lock<std::mutex> lock{ledger_->mtx};
    if (!stopping_) {
      build_job job;
      job.filter = f;
      job.now = now;
      job.reader = std::move(done);
      job.max_items = max_items;
      queue_.push_back(std::move(job));
      lock.unlock();
      queued_.notify_one();
      return;
    }
  }
  done(shutting_down());
}

void item_set_cache::run_builds() {
  for (;;) {
    build_job job;
    {
      std::unique_lock<std::mutex> lock{ledger_->mtx};
      queued_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty())
        return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    if (job.reader)
      job.reader(source_.read(job.filter, job.now, job.max_items));
    else
      build(job);
  }
}

void item_set_cache::build(build_job& job) {
  size_t free_bytes = 0;
  {
    std::lock_guard<std::mutex> guard{ledger_->mtx};
    free_bytes = ledger_->counts.max_bytes - ledger_->counts.bytes;
  }
  // The read stops once the set could not fit the budget anyway, so a
  // refused filter never holds more than the free bytes while it is read.
  const size_t fits = free_bytes > neg_session_bytes + sizeof(neg::item_set)
                        ? (free_bytes - neg_session_bytes
                           - sizeof(neg::item_set))
                            / sizeof(neg::item)
                        : 0;
  const size_t limit = std::min(config_.max_items, fits);
  auto scanned = source_.read(job.filter, job.now, limit);
  std::string error;
  bool over_budget = false;
  std::unique_ptr<neg::item_set> built;
  if (!scanned)
    error = "error: reading the store failed: " + render(scanned.error());
  else if (scanned->over_limit && limit < config_.max_items)
    over_budget = true;
  else if (scanned->over_limit)
    error = too_many_items(config_.max_items);
  else
    built = std::make_unique<neg::item_set>(std::move(scanned->items));
  std::vector<callback> waiters;
  std::vector<item_set_result> results;
  neg::item_set_ptr items;
  {
    std::lock_guard<std::mutex> guard{ledger_->mtx};
    auto& led = *ledger_;
    ++led.counts.builds;
    auto i = led.entries.find(job.key);
    waiters.swap(i->second.waiters);
    results.resize(waiters.size());
    const auto bytes = built ? built->memory_bytes() : 0;
    if (built
        && led.counts.bytes + bytes + neg_session_bytes > led.counts.max_bytes)
      over_budget = true;
    if (over_budget) {
      led.counts.refusals += waiters.size();
      for (size_t n = 0; n < waiters.size(); ++n)
        metrics::negentropy_refused();
      error = led.budget_full();
    }
    if (!error.empty()) {
      led.entries.erase(i);
      for (auto& r : results)
        r.error = error;
    } else {
      led.counts.bytes += bytes;
      ++led.counts.item_sets;
      metrics::negentropy_memory(static_cast<int64_t>(bytes), 0, 1);
      items = neg::item_set_ptr{built.release(),
                                release_set{ledger_, job.key, job.generation,
                                            bytes}};
      i->second.items = items;
      for (auto& r : results) {
        r.lease = led.admit(ledger_, items);
        if (!r.lease) {
          ++led.counts.refusals;
          metrics::negentropy_refused();
          r.error = led.budget_full();
        }
      }
    }
  }
  // Outside the lock: the set's deleter takes it when no waiter got a lease.
  items.reset();
  for (size_t n = 0; n < waiters.size(); ++n)
    waiters[n](std::move(results[n]));
}

} // namespace ferry
