// State: one immutable snapshot of everything a SIGHUP reload may change
// (admin, policies, API route settings, log levels, keystore cache, TLS
// context). Requests read the current snapshot; a reload builds a new one
// and swaps it in, so in-flight requests finish on the old one.
#pragma once

#include <array>
#include <atomic>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "config/config.h"
#include "identity/policy.h"
#include "keystore/cache.h"
#include "server/router.h"
#include "server/tls.h"

namespace kes::server {

struct PolicyEntry {
  std::string name;
  identity::Policy policy;
  std::vector<std::string> identities;
};

struct RouteSettings {
  bool skip_auth = false;
  std::chrono::nanoseconds timeout{0};  // 0: none
};

struct State {
  std::string admin;
  std::map<std::string, PolicyEntry> policies;                    // by name
  std::unordered_map<std::string, const PolicyEntry*> policy_of;  // identity -> policy
  std::array<RouteSettings, kRouteCount> routes;
  config::LogConfig log;
  std::shared_ptr<keystore::KeyCache> cache;
  std::shared_ptr<boost::asio::ssl::context> tls;
  std::string created_at;  // server start time (policies, identities), RFC 3339

  const RouteSettings& settings(const Route& r) const { return routes[static_cast<size_t>(r.id)]; }
};

// Policies, admin and route settings of a config file. Validates policy
// names and identities with upstream's messages ("kes: policy name ...").
Status ApplyPolicies(const config::ServerConfig& cfg, State* state);
// Route defaults with the config's api: overrides applied.
void ApplyRouteSettings(const std::map<std::string, config::ApiConfig>& api, State* state);

// The current snapshot. Load() is lock-free for a caller that keeps the
// last snapshot and its generation (Connection::CurrentState).
class StateHolder {
 public:
  std::shared_ptr<const State> Load() const {
    std::lock_guard lock(mu_);
    return state_;
  }
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  void Store(std::shared_ptr<const State> s) {
    {
      std::lock_guard lock(mu_);
      state_ = std::move(s);
    }
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const State> state_;
  std::atomic<uint64_t> generation_{0};
};

}  // namespace kes::server
