// KeyCache: the in-memory cache in front of every keystore (spec
// keystores.md §3). Parsed keys are served from memory; a miss fetches the
// stored value once per name however many callers wait (single flight);
// while the backend is offline, cached keys keep serving.
//
// Thread-safety: every method may be called from any thread. TryGet never
// blocks on the backend and is safe on an I/O thread; all other methods may
// call the backend and must run on a worker thread; they return by their
// deadline (waiting for another caller's fetch of the same name included).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "crypto/key_version.h"
#include "keystore/key_ring.h"
#include "keystore/keystore.h"

namespace kes::keystore {

struct CacheOptions {
  // Period of the global flush; <= 0 disables it.
  std::chrono::nanoseconds expiry_any = std::chrono::minutes(5);
  // Entries unused for this long are dropped (checked every unused/2); <= 0 disables.
  std::chrono::nanoseconds expiry_unused = std::chrono::seconds(30);
  // While offline, cached entries survive until this period ticks; <= 0: no
  // offline caching (entries are flushed by the normal timers).
  std::chrono::nanoseconds expiry_offline = std::chrono::nanoseconds(0);
  // Health probe period (upstream: fixed 10 s).
  std::chrono::nanoseconds probe_interval = std::chrono::seconds(10);
};

// A cached key: its ring of versions (a never-rotated key has one).
using KeyRef = std::shared_ptr<const KeyRing>;

class KeyCache {
 public:
  KeyCache(std::unique_ptr<KeyStore> store, CacheOptions options);
  ~KeyCache();  // stops the timers, closes the backend
  KeyCache(const KeyCache&) = delete;
  KeyCache& operator=(const KeyCache&) = delete;

  // A cached key, or nullptr. Never touches the backend; marks the entry used.
  KeyRef TryGet(std::string_view name);
  // A cached key or, on a miss, fetched from the backend and parsed.
  // KeyNotFound passes through; a corrupt stored value or backend error is
  // an error (the API answers 502 "failed to read key").
  Result<KeyRef> Get(std::string_view name, Deadline deadline);
  // Re-reads the ring when a request names version `wanted` above the cached
  // latest (rotation.md §7): at most once per second per name, so bogus
  // version headers cannot flood the backend. Returns the (possibly
  // unchanged) ring.
  Result<KeyRef> Refresh(std::string_view name, uint32_t wanted, Deadline deadline);
  // Encodes and stores a new key (create-if-absent), then removes internal
  // entries of an earlier key of that name. Does not cache it.
  kes::Status Create(std::string_view name, const crypto::KeyVersion& key, Deadline deadline);
  // Deletes in the backend (the key, then its internal entries); on success
  // evicts the entry.
  kes::Status Delete(std::string_view name, Deadline deadline);
  // Adds a version / writes a minimum decryption version (key_ring.h),
  // serialized per name within this process; evicts the entry.
  Result<RotatedVersion> Rotate(std::string_view name, std::string_view creator, Deadline deadline);
  Result<RingSummary> Configure(std::string_view name, uint32_t min_decryption_version,
                                std::string_view creator, Deadline deadline);
  // Key names only: internal entries of rings are never listed.
  Result<ListPage> List(std::string_view prefix, Deadline deadline);
  // kUnreachable immediately while offline, else the backend's Status.
  Result<KeyStoreState> Status(Deadline deadline);
  bool offline() const;
  std::string DisplayName() const;

  // The backend's change feed (cache coherence across servers): nullopt if
  // the backend has none, else whether it is connected now.
  std::optional<bool> watching() const;

  // Number of backend Get calls so far (exported as a metric; a warm cache
  // makes none).
  uint64_t backend_gets() const;
  // Number of keys held in the cache now (a metric; takes each shard's lock
  // in turn, so not for the request path).
  size_t cached_keys() const;

 private:
  struct Impl;
  class FlightRef;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kes::keystore
