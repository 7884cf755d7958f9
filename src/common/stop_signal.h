// StopSignal: ends a component's background loops (token renewal, health
// polls). A loop waits on it instead of sleeping, so Close() returns at once
// rather than after the loop's next wake-up.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace kes {

class StopSignal {
 public:
  // Wakes every waiter. True the first time only: that caller joins the
  // threads.
  bool Stop() {
    {
      std::lock_guard lock(mu_);
      if (stopped_) return false;
      stopped_ = true;
    }
    cv_.notify_all();
    return true;
  }

  // Waits `d` unless Stop() comes first; true when stopping.
  bool Wait(std::chrono::milliseconds d) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, d, [this] { return stopped_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
};

}  // namespace kes
