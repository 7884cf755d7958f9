// The Entrust KeyControl keystore (keystores-cloud.md §5): one secret per
// key in one box of a KeyControl vault, every call a JSON POST with the
// session token in X-Vault-Auth, a background loop that renews the token at
// half its lifetime (and logs in again when renewal fails, retrying until it
// succeeds), and server-side paging for listings.
#pragma once

#include <chrono>
#include <memory>

#include "common/status.h"
#include "keystore/entrust/config.h"
#include "keystore/keystore.h"
#include "net/retry.h"

namespace kes::keystore::entrust {

// Timing of the token loop (§5.1); tests shorten it.
struct Timing {
  // Lifetime assumed when a token comes without `expires_at`.
  std::chrono::milliseconds unknown_lifetime{std::chrono::minutes(5)};
  // Refresh delay when half the remaining lifetime is <= 0.
  std::chrono::milliseconds expired_refresh{std::chrono::seconds(150)};
  // Between login attempts after renew and login both failed (upstream
  // never tried again).
  std::chrono::milliseconds relogin_retry{std::chrono::seconds(5)};
  // Re-sends of every call (keystores-cloud.md §0).
  net::RetryPolicy retry;
};

// Logs in, checks the box (GetBox must answer 200) and starts the token
// loop. Fails like upstream when either fails.
Result<std::unique_ptr<KeyStore>> Open(const Config& config, const Timing& timing = {});

}  // namespace kes::keystore::entrust
