// CachingProvider: caches the credentials of an inner provider and refreshes
// temporary ones before they expire, without stalling requests.
//
// For credentials with lifetime L (expiry minus retrieval time):
//   advisory point  = expiry - min(15 min, L/2): a background thread
//                     refreshes; callers keep the current set;
//   mandatory point = expiry - min(5 min, L/4): callers block on a single
//                     refresh (one fetch, the others wait for it).
// A failed refresh keeps serving the current set until it has expired.
// Each caller gets an immutable snapshot, so id, secret and token always
// belong together.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "aws/credentials.h"

namespace kes::aws {

class CachingProvider : public CredentialProvider {
 public:
  using NowFn = std::function<Clock::time_point()>;
  explicit CachingProvider(std::shared_ptr<CredentialProvider> inner, NowFn now = {});
  ~CachingProvider() override;

  Result<CredentialsPtr> Retrieve() override;
  std::string Name() const override { return inner_->Name(); }
  void Invalidate() override;

  int refresh_count() const;  // completed fetches from the inner provider

 private:
  struct Schedule {
    Clock::time_point advisory;
    Clock::time_point mandatory;
  };
  Schedule ScheduleFor(const Credentials& c, Clock::time_point fetched) const;
  // Fetches with mu_ released; call with `lock` held and refreshing_ set.
  Status RefreshLocked(std::unique_lock<std::mutex>& lock);
  void BackgroundLoop();

  std::shared_ptr<CredentialProvider> inner_;
  NowFn now_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  CredentialsPtr current_;
  Schedule schedule_{};
  bool refreshing_ = false;
  bool kick_ = false;
  bool stop_ = false;
  Clock::time_point next_background_try_{};
  int refresh_count_ = 0;
  std::thread worker_;
};

}  // namespace kes::aws
