// KeyStore: the narrow interface every backend implements (spec
// keystores.md §1). Values are opaque text blobs (the encoded KeyVersion);
// a backend knows nothing about HTTP or key formats.
//
// Error contract (Status codes):
//   kAlreadyExists -> Status::KeyExists()      (Create of an existing name)
//   kNotFound      -> Status::KeyNotFound()    (Get/Delete of a missing name)
//   kUnreachable   -> the backend cannot be reached (network, offline)
//   anything else  -> a backend failure; the message is for the error log only.
//
// Implementations must be safe to call from many threads at once. Calls may
// block (disk, network): the server never calls them on an I/O thread. Every
// call carries a deadline (the route's timeout): a backend returns by then,
// with DeadlineExceeded() if it must, instead of holding the worker thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/deadline.h"
#include "common/status.h"

namespace kes::keystore {

struct KeyStoreState {
  std::chrono::nanoseconds latency{0};  // round trip of the health probe
};

// A stored value and the backend's revision of it: a number that grows with
// every write to the backend (etcd's mod_revision), 0 from a backend without
// a change feed.
struct StoredValue {
  std::string value;
  int64_t revision = 0;
};

struct ListPage {
  std::vector<std::string> names;  // sorted byte-wise
  std::string continue_at;         // empty at the end
};

// Receives the changes other servers make to a shared backend, so that
// every server's cache drops a deleted or re-created key (cache coherence).
// Called from the backend's own thread.
class ChangeListener {
 public:
  virtual ~ChangeListener() = default;
  // `name` was written or deleted at `revision` (the backend's revision of
  // that write; 0: unknown, i.e. newer than anything cached).
  virtual void Changed(std::string_view name, int64_t revision) = 0;
  // Changes may have been missed (the backend's history was compacted).
  virtual void ChangedAll() = 0;
  // The change feed is connected (true) or down (false; caches then rely on
  // their expiry timers alone).
  virtual void Watching(bool up) = 0;
};

class KeyStore {
 public:
  virtual ~KeyStore() = default;

  // Text after "KMS" in the start-up banner, e.g. "In Memory",
  // "Filesystem: /var/kes", "AWS SecretsManager: https://...".
  virtual std::string DisplayName() const = 0;

  // Reachability probe. Must return kUnreachable when the backend cannot be
  // contacted at all.
  virtual Result<KeyStoreState> Status(Deadline deadline) = 0;

  // Stores `value` under `name` only if absent. Returns OK only once the
  // backend has durably accepted the write.
  virtual kes::Status Create(std::string_view name, std::string_view value, Deadline deadline) = 0;

  virtual Result<std::string> Get(std::string_view name, Deadline deadline) = 0;

  virtual kes::Status Delete(std::string_view name, Deadline deadline) = 0;

  // Get and Create with the backend's revision of the value. A backend with a
  // change feed overrides both, so that the cache can ignore the events its
  // cached value already reflects (its own server's create, events replayed
  // after a reconnect). The defaults report revision 0.
  virtual Result<StoredValue> GetWithRevision(std::string_view name, Deadline deadline) {
    Result<std::string> value = Get(name, deadline);
    if (!value.ok()) return value.status();
    return StoredValue{std::move(*value), 0};
  }
  virtual Result<int64_t> CreateWithRevision(std::string_view name, std::string_view value,
                                             Deadline deadline) {
    kes::Status s = Create(name, value, deadline);
    if (!s.ok()) return s;
    return int64_t{0};
  }

  // Names starting with `prefix` (empty = all), sorted. `limit` <= 0 means
  // "everything": the server always asks for everything and returns one
  // complete page to clients (api.md §4 recommendation).
  virtual Result<ListPage> List(std::string_view prefix, int limit, Deadline deadline) = 0;

  // Starts feeding `listener` (which outlives Close()) if the backend can
  // observe other servers' writes; most backends cannot and ignore it.
  virtual void Subscribe(ChangeListener* listener) { (void)listener; }

  // Stops background work (token renewal, pings, watches). Idempotent.
  virtual void Close() {}
};

}  // namespace kes::keystore
