// KeyCache (keystores.md §3). Entries live in shards, each behind a
// shared_mutex, so the per-request TryGet takes one shared lock on one of
// many shards. Misses are serialized per name (single flight); the timers
// and the health probe run on one background thread.
#include "keystore/cache.h"

#include <array>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <limits>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <unordered_map>

#include "crypto/secret_bytes.h"

namespace kes::keystore {
namespace {

constexpr size_t kShards = 32;

struct Hash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
struct Equal {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const { return a == b; }
};

// Held in the map node itself: one allocation per cached name besides the
// key's own block.
struct Entry {
  Entry(KeyRef k, int64_t r) : key(std::move(k)), revision(r) {}
  KeyRef key;
  int64_t revision;                      // the backend's revision of the value (0: none)
  mutable std::atomic<bool> used{true};  // cleared by the unused sweep
};

// One miss in progress for a name; later callers wait on `mu`. A create of
// the name joins it too, without taking `mu`, to learn of changes.
struct Flight {
  std::timed_mutex mu;
  size_t refs = 0;  // guarded by Shard::flights_mu
  // The newest change to the name seen by the change feed while the flight
  // existed (revision; INT64_MAX: unknown); guarded by Shard::mu. A value
  // read or written below it may be stale and is not cached.
  int64_t changed_at = 0;
};

struct Shard {
  std::shared_mutex mu;
  std::unordered_map<std::string, Entry, Hash, Equal> entries;

  std::mutex flights_mu;
  std::unordered_map<std::string, std::shared_ptr<Flight>, Hash, Equal> flights;
};

}  // namespace

struct KeyCache::Impl : ChangeListener {
  Impl(std::unique_ptr<KeyStore> s, CacheOptions o) : store(std::move(s)), options(o) {}

  std::unique_ptr<KeyStore> store;
  const CacheOptions options;
  std::array<Shard, kShards> shards;
  std::atomic<bool> offline{false};
  std::atomic<uint64_t> backend_gets{0};
  // Bumped by ChangedAll (the change feed lost history): a fetch or create
  // that overlapped it is not cached.
  std::atomic<uint64_t> epoch{0};
  // -1: no change feed; 0: down; 1: up.
  std::atomic<int> watch_state{-1};

  std::mutex timer_mu;
  std::condition_variable timer_cv;
  bool stopping = false;  // guarded by timer_mu
  std::thread timer_thread;

  Shard& ShardOf(std::string_view name) { return shards[Hash{}(name) % kShards]; }

  KeyRef Lookup(std::string_view name) {
    Shard& shard = ShardOf(name);
    std::shared_lock lock(shard.mu);
    auto it = shard.entries.find(name);
    if (it == shard.entries.end()) return nullptr;
    // Avoid a store (and cache-line traffic) when already marked.
    Entry& entry = it->second;
    if (!entry.used.load(std::memory_order_relaxed)) {
      entry.used.store(true, std::memory_order_relaxed);
    }
    return entry.key;
  }

  // Caches `key` at `revision`, unless the change feed reported a newer
  // change to the name during `flight`, or lost history since `seen_epoch`:
  // the value may then be the one from before that change. Checked under
  // the shard lock, which Changed holds too, so no change slips in between.
  void Insert(std::string_view name, KeyRef key, int64_t revision, const Flight& flight,
              uint64_t seen_epoch) {
    Shard& shard = ShardOf(name);
    std::unique_lock lock(shard.mu);
    if (flight.changed_at > revision || epoch.load() != seen_epoch) return;
    auto [it, inserted] = shard.entries.try_emplace(std::string(name), key, revision);
    if (!inserted && it->second.revision <= revision) {
      it->second.key = std::move(key);
      it->second.revision = revision;
      it->second.used.store(true, std::memory_order_relaxed);
    }
  }

  void Evict(std::string_view name) {
    Shard& shard = ShardOf(name);
    std::unique_lock lock(shard.mu);
    if (auto it = shard.entries.find(name); it != shard.entries.end()) shard.entries.erase(it);
  }

  void EvictAll() {
    for (Shard& shard : shards) {
      std::unique_lock lock(shard.mu);
      shard.entries.clear();
    }
  }

  // ChangeListener: the backend's change feed. An event no newer than the
  // cached value (this server's own create, an event replayed after a
  // reconnect) leaves it cached; a newer one evicts it and keeps a fetch or
  // create of the name in progress from caching what it got.
  // A version or configuration entry of a ring (another node's rotation)
  // counts as a change of its key.
  void Changed(std::string_view entry, int64_t revision) override {
    const std::string_view name = InternalEntryOwner(entry).value_or(entry);
    if (revision <= 0) revision = std::numeric_limits<int64_t>::max();
    Shard& shard = ShardOf(name);
    std::unique_lock lock(shard.mu);
    auto it = shard.entries.find(name);
    if (it != shard.entries.end() && it->second.revision < revision) shard.entries.erase(it);
    std::lock_guard flights_lock(shard.flights_mu);
    if (auto f = shard.flights.find(name); f != shard.flights.end()) {
      f->second->changed_at = std::max(f->second->changed_at, revision);
    }
  }
  void ChangedAll() override {
    epoch.fetch_add(1);
    EvictAll();
  }
  void Watching(bool up) override { watch_state.store(up ? 1 : 0); }

  // Drops entries not used since the last sweep and clears the flags of the
  // others.
  void EvictUnused() {
    for (Shard& shard : shards) {
      std::unique_lock lock(shard.mu);
      std::erase_if(shard.entries, [](const auto& kv) {
        return !kv.second.used.exchange(false, std::memory_order_relaxed);
      });
    }
  }

  std::shared_ptr<Flight> JoinFlight(Shard& shard, std::string_view name) {
    std::lock_guard lock(shard.flights_mu);
    auto it = shard.flights.find(name);
    if (it == shard.flights.end()) {
      it = shard.flights.emplace(std::string(name), std::make_shared<Flight>()).first;
    }
    ++it->second->refs;
    return it->second;
  }

  void LeaveFlight(Shard& shard, std::string_view name) {
    std::lock_guard lock(shard.flights_mu);
    auto it = shard.flights.find(name);
    if (it != shard.flights.end() && --it->second->refs == 0) shard.flights.erase(it);
  }

  // The ring and the revision of its key's own entry, read first: every
  // later read of the ring sees at least that revision, so an event at or
  // below it is already in the ring. A stored value that does not decode is
  // a backend fault (API 502), never a client error: LoadKeyRing reports it
  // as kUnavailable.
  Result<std::pair<KeyRef, int64_t>> Fetch(std::string_view name, Deadline deadline) {
    backend_gets.fetch_add(1, std::memory_order_relaxed);
    int64_t revision = 0;
    Result<KeyRing> ring = LoadKeyRing(*store, name, deadline, &revision);
    if (!ring.ok()) return ring.status();
    return std::pair(KeyRef(std::make_shared<const KeyRing>(std::move(ring).value())), revision);
  }

  // Fetches the ring and caches it, unless the change feed reported a newer
  // change (another node's delete or rotation) during `flight`: the fetched
  // value may be stale, so it is returned but not cached.
  Result<KeyRef> FetchAndCache(std::string_view name, const Flight& flight, Deadline deadline) {
    const uint64_t seen_epoch = epoch.load();
    auto fetched = Fetch(name, deadline);
    if (!fetched.ok()) return fetched.status();
    Insert(name, fetched->first, fetched->second, flight, seen_epoch);
    return fetched->first;
  }

  // Runs `f` holding the name's flight lock: serializes it with misses,
  // refreshes, rotations and configurations of the same name. Waits for the
  // lock no later than `deadline`.
  template <typename F>
  auto WithFlight(std::string_view name, Deadline deadline, F f)
      -> decltype(f(std::declval<const Flight&>())) {
    Shard& shard = ShardOf(name);
    std::shared_ptr<Flight> flight = JoinFlight(shard, name);
    // Left however this ends: a backend that throws (Offload turns that into
    // an error) must not leave the flight behind.
    struct Leave {
      Impl& impl;
      Shard& shard;
      std::string_view name;
      ~Leave() { impl.LeaveFlight(shard, name); }
    } leave{*this, shard, name};
    std::unique_lock lock(flight->mu, std::defer_lock);
    if (deadline == kNoDeadline) {
      lock.lock();
    } else if (!lock.try_lock_until(deadline)) {
      return DeadlineExceeded();
    }
    return f(*flight);
  }

  // Whether `name` may be refreshed now (at most once per second); records
  // the refresh.
  bool RefreshAllowed(std::string_view name) {
    using Clock = std::chrono::steady_clock;
    const Clock::time_point now = Clock::now();
    std::lock_guard lock(refresh_mu);
    if (last_refresh.size() > 4096) {
      std::erase_if(last_refresh, [&](const auto& kv) { return now - kv.second >= kRefreshGap; });
    }
    auto [it, inserted] = last_refresh.try_emplace(std::string(name), now);
    if (inserted) return true;
    if (now - it->second < kRefreshGap) return false;
    it->second = now;
    return true;
  }

  static constexpr std::chrono::seconds kRefreshGap{1};
  std::mutex refresh_mu;
  std::unordered_map<std::string, std::chrono::steady_clock::time_point, Hash, Equal> last_refresh;

  void RunTimers() {
    using Clock = std::chrono::steady_clock;
    struct Timer {
      std::chrono::nanoseconds period;
      std::function<void()> fire;
      Clock::time_point next;
    };
    const bool offline_caching = options.expiry_offline.count() > 0;
    auto normal_flush_allowed = [&] { return !offline.load() || !offline_caching; };
    std::vector<Timer> timers;
    auto add = [&](std::chrono::nanoseconds period, std::function<void()> fire) {
      if (period.count() > 0) timers.push_back({period, std::move(fire), Clock::now() + period});
    };
    add(options.expiry_any, [&] {
      if (normal_flush_allowed()) EvictAll();
    });
    add(options.expiry_unused / 2, [&] {
      if (normal_flush_allowed()) EvictUnused();
    });
    add(options.expiry_offline, [&] {
      if (offline.load() && offline_caching) EvictAll();
    });
    add(options.probe_interval, [&] {
      // Any failure of the probe counts as offline (upstream ignores only
      // cancellation, which cannot happen here).
      offline.store(!store->Status(DeadlineIn(options.probe_interval)).ok());
    });
    if (timers.empty()) return;

    std::unique_lock lock(timer_mu);
    while (!stopping) {
      Clock::time_point next = Clock::time_point::max();
      for (const Timer& t : timers) next = std::min(next, t.next);
      timer_cv.wait_until(lock, next, [&] { return stopping || Clock::now() >= next; });
      if (stopping) break;
      lock.unlock();
      const Clock::time_point now = Clock::now();
      for (Timer& t : timers) {
        if (now < t.next) continue;
        t.fire();
        // Fixed-rate ticker; skip ticks missed while busy.
        while (t.next <= now) t.next += t.period;
      }
      lock.lock();
    }
  }
};

KeyCache::KeyCache(std::unique_ptr<KeyStore> store, CacheOptions options)
    : impl_(std::make_unique<Impl>(std::move(store), options)) {
  impl_->store->Subscribe(impl_.get());
  impl_->timer_thread = std::thread([impl = impl_.get()] { impl->RunTimers(); });
}

KeyCache::~KeyCache() {
  {
    std::lock_guard lock(impl_->timer_mu);
    impl_->stopping = true;
  }
  impl_->timer_cv.notify_all();
  if (impl_->timer_thread.joinable()) impl_->timer_thread.join();
  impl_->store->Close();
}

KeyRef KeyCache::TryGet(std::string_view name) { return impl_->Lookup(name); }

// Membership of a name's flight, left however the call ends: a backend that
// throws (Offload turns that into an error) must not leave the flight behind.
class KeyCache::FlightRef {
 public:
  FlightRef(Impl& impl, std::string_view name)
      : impl_(impl),
        shard_(impl.ShardOf(name)),
        name_(name),
        flight_(impl.JoinFlight(shard_, name)) {}
  ~FlightRef() { impl_.LeaveFlight(shard_, name_); }
  FlightRef(const FlightRef&) = delete;
  FlightRef& operator=(const FlightRef&) = delete;
  Flight& operator*() const { return *flight_; }
  Flight* operator->() const { return flight_.get(); }

 private:
  Impl& impl_;
  Shard& shard_;
  std::string_view name_;
  std::shared_ptr<Flight> flight_;
};

Result<KeyRef> KeyCache::Get(std::string_view name, Deadline deadline) {
  if (KeyRef key = impl_->Lookup(name)) return key;
  return impl_->WithFlight(name, deadline, [&](const Flight& flight) -> Result<KeyRef> {
    // Another caller may have filled the entry while we waited.
    if (KeyRef key = impl_->Lookup(name)) return key;
    return impl_->FetchAndCache(name, flight, deadline);
  });
}

Result<KeyRef> KeyCache::Refresh(std::string_view name, uint32_t wanted, Deadline deadline) {
  return impl_->WithFlight(name, deadline, [&](const Flight& flight) -> Result<KeyRef> {
    KeyRef cached = impl_->Lookup(name);
    // A refresh that completed while we waited may already know `wanted`.
    if (cached && cached->latest() >= wanted) return cached;
    if (cached && !impl_->RefreshAllowed(name)) return cached;
    return impl_->FetchAndCache(name, flight, deadline);
  });
}

kes::Status KeyCache::Create(std::string_view name, const crypto::KeyVersion& key,
                             Deadline deadline) {
  Result<std::string> encoded = crypto::EncodeKeyVersion(key);
  if (!encoded.ok()) return encoded.status();
  FlightRef flight(*impl_, name);  // learns of changes made meanwhile
  const uint64_t epoch = impl_->epoch.load();
  Result<int64_t> revision = impl_->store->CreateWithRevision(name, *encoded, deadline);
  crypto::Zeroize(encoded->data(), encoded->size());
  if (!revision.ok()) return revision.status();
  const Genesis genesis = RingGenesis(key);
  RemoveInternalEntries(*impl_->store, name, genesis, deadline);
  // A backend with revisions has a change feed, which will report this very
  // write: cached at its revision, the new one-version ring is served
  // without a read and the event leaves it cached. Others cache on first
  // use, as upstream does.
  if (*revision > 0) {
    auto ring = std::make_shared<KeyRing>();
    ring->versions.push_back(key.Clone());
    ring->genesis = genesis;
    impl_->Insert(name, std::move(ring), *revision, *flight, epoch);
  }
  return kes::Status::Ok();
}

kes::Status KeyCache::Delete(std::string_view name, Deadline deadline) {
  // The key's own entry first: its removal is the visible commit (§4.7).
  kes::Status s = impl_->store->Delete(name, deadline);
  if (s.ok()) {
    RemoveInternalEntries(*impl_->store, name, std::nullopt, deadline);
    impl_->Evict(name);
  }
  return s;
}

Result<RotatedVersion> KeyCache::Rotate(std::string_view name, std::string_view creator,
                                        Deadline deadline) {
  return impl_->WithFlight(name, deadline, [&](const Flight&) -> Result<RotatedVersion> {
    Result<RotatedVersion> r = RotateKeyRing(*impl_->store, name, creator, deadline);
    impl_->Evict(name);
    return r;
  });
}

Result<RingSummary> KeyCache::Configure(std::string_view name, uint32_t min_decryption_version,
                                        std::string_view creator, Deadline deadline) {
  return impl_->WithFlight(name, deadline, [&](const Flight&) -> Result<RingSummary> {
    Result<RingSummary> r =
        ConfigureKeyRing(*impl_->store, name, min_decryption_version, creator, deadline);
    impl_->Evict(name);
    return r;
  });
}

Result<ListPage> KeyCache::List(std::string_view prefix, Deadline deadline) {
  Result<ListPage> page = impl_->store->List(prefix, 0, deadline);
  if (page.ok())
    std::erase_if(page->names, [](const std::string& n) { return IsInternalEntryName(n); });
  return page;
}

Result<KeyStoreState> KeyCache::Status(Deadline deadline) {
  if (impl_->offline.load()) {
    return kes::Status::Unreachable("kes: keystore unreachable: keystore is offline");
  }
  return impl_->store->Status(deadline);
}

bool KeyCache::offline() const { return impl_->offline.load(); }

std::string KeyCache::DisplayName() const { return impl_->store->DisplayName(); }

std::optional<bool> KeyCache::watching() const {
  const int state = impl_->watch_state.load();
  if (state < 0) return std::nullopt;
  return state == 1;
}

uint64_t KeyCache::backend_gets() const {
  return impl_->backend_gets.load(std::memory_order_relaxed);
}

size_t KeyCache::cached_keys() const {
  size_t n = 0;
  for (Shard& shard : impl_->shards) {
    std::shared_lock lock(shard.mu);
    n += shard.entries.size();
  }
  return n;
}

}  // namespace kes::keystore
