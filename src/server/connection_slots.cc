#include "server/connection_slots.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>

namespace kes::server {
namespace {

// File descriptors kept back from connections for keystore files, sockets
// to a keystore and the like.
constexpr int64_t kReservedFds = 64;
// Victims shed per scan when the server is full: the scan is O(slots), so
// shedding a batch keeps its cost per accepted connection small. Shed
// connections hold their descriptor until their thread closes them, which
// this many stay well inside kReservedFds.
constexpr size_t kMaxBatch = 32;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

class ConnectionSlots::Slot {
 public:
  explicit Slot(std::function<void()> shed) : shed_(std::move(shed)) {}

 private:
  friend class ConnectionSlots;
  // When the slot became idle (steady clock, ns); 0 while busy.
  std::atomic<int64_t> idle_since_{NowNs()};
  std::atomic<bool> trusted_{false};
  std::function<void()> shed_;  // guarded by mu_
  bool shed_called_ = false;    // guarded by mu_
  size_t index_ = 0;            // guarded by mu_
  ConnectionSlots* owner_ = nullptr;
};

ConnectionSlots::ConnectionSlots(int64_t capacity) : capacity_(std::max<int64_t>(1, capacity)) {}

ConnectionSlots::~ConnectionSlots() = default;

int64_t ConnectionSlots::CapacityFromFileLimit() {
  struct rlimit rl {};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return 1 << 20;
  return std::max<int64_t>(kReservedFds, static_cast<int64_t>(rl.rlim_cur) - kReservedFds);
}

ConnectionSlots::SlotPtr ConnectionSlots::Acquire(std::function<void()> shed) {
  std::vector<std::function<void()>> victims;
  SlotPtr slot(nullptr, [](Slot* s) { s->owner_->Release(s); });
  {
    std::lock_guard lock(mu_);
    const int64_t live = static_cast<int64_t>(slots_.size());
    if (live - shedding_ >= capacity_) {
      victims = PickVictims(std::clamp<size_t>(static_cast<size_t>(capacity_) / 64, 1, kMaxBatch));
    }
    // Shed connections still hold their descriptors: never more than a
    // batch beyond the capacity.
    const bool room =
        live - shedding_ < capacity_ && live < capacity_ + static_cast<int64_t>(kMaxBatch);
    if (room) {
      auto* s = new Slot(std::move(shed));
      s->owner_ = this;
      s->index_ = slots_.size();
      slots_.push_back(s);
      slot.reset(s);
    }
  }
  for (auto& v : victims) v();
  return slot;
}

std::vector<std::function<void()>> ConnectionSlots::PickVictims(size_t n) {
  // Sheddable: unknown identities in any state, trusted ones while idle.
  // Unknown ones first, then the longest idle.
  struct Candidate {
    bool trusted;
    int64_t idle_since;  // 0 (busy) sorts first among the unknown: no matter
    Slot* slot;
  };
  std::vector<Candidate> c;
  for (Slot* s : slots_) {
    if (s->shed_called_) continue;
    const bool trusted = s->trusted_.load(std::memory_order_relaxed);
    const int64_t idle = s->idle_since_.load(std::memory_order_relaxed);
    if (trusted && idle == 0) continue;
    c.push_back({trusted, idle, s});
  }
  const auto order = [](const Candidate& a, const Candidate& b) {
    if (a.trusted != b.trusted) return !a.trusted;
    return a.idle_since < b.idle_since;
  };
  n = std::min(n, c.size());
  std::partial_sort(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(n), c.end(), order);
  std::vector<std::function<void()>> out;
  for (size_t i = 0; i < n; ++i) {
    Slot* s = c[i].slot;
    s->shed_called_ = true;
    ++shedding_;
    out.push_back(std::move(s->shed_));
  }
  return out;
}

void ConnectionSlots::Release(Slot* slot) {
  {
    std::lock_guard lock(mu_);
    Slot* last = slots_.back();
    slots_[slot->index_] = last;
    last->index_ = slot->index_;
    slots_.pop_back();
    if (slot->shed_called_) --shedding_;
  }
  delete slot;
}

void ConnectionSlots::Identified(Slot& slot, bool trusted) {
  slot.trusted_.store(trusted, std::memory_order_relaxed);
}

void ConnectionSlots::Busy(Slot& slot) { slot.idle_since_.store(0, std::memory_order_relaxed); }

void ConnectionSlots::Idle(Slot& slot) {
  slot.idle_since_.store(NowNs(), std::memory_order_relaxed);
}

int64_t ConnectionSlots::live() const {
  std::lock_guard lock(mu_);
  return static_cast<int64_t>(slots_.size());
}

}  // namespace kes::server
