// ConnectionSlots: how many client connections the server holds, and which
// to give up when that is all its file descriptors allow. Without it, any
// client with any self-signed certificate could hold every slot with idle
// connections (90 s each) and every legitimate client would be refused.
//
// When a new connection finds no free slot, the server sheds connections to
// make room before refusing it: first those whose identity is unknown (not
// the admin, in no policy: every request of theirs but /version is refused
// anyway) in any state, then trusted ones that are idle between requests,
// the longest-idle first. A trusted connection in the middle of a request
// is never shed. An HTTP/1.1 connection is idle between requests; an HTTP/2
// one while it has no open stream.
//
// Use: Acquire on accept (with a callback that closes the connection on its
// own thread), Identified once the TLS handshake is done, Busy/Idle around
// requests. A Slot is released when destroyed. Busy and Idle touch only
// the slot itself (no lock), so requests share no cache line; the scan for
// victims runs only when the server is full, and sheds a batch at a time.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace kes::server {

class ConnectionSlots {
 public:
  class Slot;
  using SlotPtr = std::unique_ptr<Slot, void (*)(Slot*)>;

  // At most `capacity` connections (plus shed ones still closing).
  explicit ConnectionSlots(int64_t capacity);
  ~ConnectionSlots();
  ConnectionSlots(const ConnectionSlots&) = delete;
  ConnectionSlots& operator=(const ConnectionSlots&) = delete;

  // The capacity the open-file limit allows: the soft RLIMIT_NOFILE minus
  // room for the keystore's own files and sockets.
  static int64_t CapacityFromFileLimit();

  // A slot for a new connection, shedding others if needed; null when the
  // server is full of trusted connections in the middle of requests.
  // `shed` may be called once, from any thread, to close the connection.
  SlotPtr Acquire(std::function<void()> shed);

  // The TLS handshake is done: `trusted` when the identity is the admin or
  // has a policy. Until then a connection counts as unknown.
  static void Identified(Slot& slot, bool trusted);
  // A request started / ended (HTTP/2: the first stream opened / the last closed).
  static void Busy(Slot& slot);
  static void Idle(Slot& slot);

  int64_t capacity() const { return capacity_; }
  int64_t live() const;

 private:
  void Release(Slot* slot);
  // Picks up to `n` victims, marks them shed and returns their callbacks.
  std::vector<std::function<void()>> PickVictims(size_t n);

  const int64_t capacity_;
  mutable std::mutex mu_;
  std::vector<Slot*> slots_;  // every live slot; Slot::index_ is its position
  int64_t shedding_ = 0;      // shed, not yet released
};

}  // namespace kes::server
