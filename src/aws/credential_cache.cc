#include "aws/credential_cache.h"

#include <algorithm>

namespace kes::aws {

using std::chrono::minutes;
using std::chrono::seconds;

CachingProvider::CachingProvider(std::shared_ptr<CredentialProvider> inner, NowFn now)
    : inner_(std::move(inner)), now_(now ? std::move(now) : NowFn([] { return Clock::now(); })) {
  worker_ = std::thread([this] { BackgroundLoop(); });
}

CachingProvider::~CachingProvider() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

CachingProvider::Schedule CachingProvider::ScheduleFor(const Credentials& c,
                                                       Clock::time_point fetched) const {
  if (!c.expiration) return {Clock::time_point::max(), Clock::time_point::max()};
  const auto expiry = *c.expiration;
  const auto lifetime = expiry - fetched;
  if (lifetime <= seconds(0)) {
    // Already expired when handed out (IMDS during an outage): keep using
    // them for a while and let AWS judge, instead of hammering the source.
    return {fetched + seconds(60), fetched + seconds(60)};
  }
  const auto advisory = std::min<Clock::duration>(minutes(15), lifetime / 2);
  const auto mandatory = std::min<Clock::duration>(minutes(5), lifetime / 4);
  return {expiry - advisory, expiry - mandatory};
}

Status CachingProvider::RefreshLocked(std::unique_lock<std::mutex>& lock) {
  lock.unlock();
  auto fetched_at = now_();
  auto result = inner_->Retrieve();
  lock.lock();
  refreshing_ = false;
  ++refresh_count_;
  if (result.ok()) {
    current_ = *result;
    schedule_ = ScheduleFor(**result, fetched_at);
  }
  cv_.notify_all();
  return result.status();
}

Result<CredentialsPtr> CachingProvider::Retrieve() {
  std::unique_lock lock(mu_);
  for (;;) {
    const auto now = now_();
    if (current_ && now < schedule_.advisory) return current_;
    if (current_ && now < schedule_.mandatory) {
      if (!refreshing_ && !kick_) {
        kick_ = true;
        cv_.notify_all();
      }
      return current_;
    }
    if (refreshing_) {  // another caller is fetching: wait for its result
      cv_.wait(lock, [this] { return !refreshing_; });
      if (current_ && now_() < schedule_.mandatory) return current_;
      // That refresh failed: fall through and try ourselves.
    }
    refreshing_ = true;
    Status s = RefreshLocked(lock);
    if (s.ok()) return current_;
    if (current_ && current_->expiration && now_() < *current_->expiration) return current_;
    return s;
  }
}

void CachingProvider::Invalidate() {
  std::lock_guard lock(mu_);
  schedule_ = {Clock::time_point::min(), Clock::time_point::min()};
}

int CachingProvider::refresh_count() const {
  std::lock_guard lock(mu_);
  return refresh_count_;
}

void CachingProvider::BackgroundLoop() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    const auto now = now_();
    const bool due = current_ && schedule_.advisory != Clock::time_point::max() &&
                     now >= schedule_.advisory && now >= next_background_try_;
    if ((kick_ || due) && !refreshing_) {
      kick_ = false;
      refreshing_ = true;
      Status s = RefreshLocked(lock);
      if (!s.ok()) {
        // Back off before the next background attempt; callers keep the
        // current set until the mandatory point.
        next_background_try_ = now_() + seconds(5);
      }
      continue;
    }
    kick_ = false;
    // Sleep until the advisory point (real time), at most a minute, or a kick.
    auto wait = minutes(1);
    if (current_ && schedule_.advisory != Clock::time_point::max()) {
      auto until = std::max(schedule_.advisory, next_background_try_) - now;
      wait = std::clamp(std::chrono::duration_cast<minutes>(until) + minutes(0), minutes(0),
                        minutes(1));
      if (until < minutes(1)) {
        cv_.wait_for(lock, std::max<Clock::duration>(until, std::chrono::milliseconds(50)),
                     [this] { return stop_ || kick_; });
        continue;
      }
    }
    cv_.wait_for(lock, wait, [this] { return stop_ || kick_; });
  }
}

}  // namespace kes::aws
