// The HashiCorp Vault / OpenBao keystore (keystores.md §6,
// keystores-vault.md): one K/V secret per key, a single field named like the
// key holding the stored value (optionally transit-encrypted), AppRole or
// Kubernetes login with a token renewal loop, and a health poll that tracks
// the sealed state.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "keystore/keystore.h"
#include "keystore/vault/config.h"

namespace kes::keystore::vault {

// Timing of the renewal loop (keystores-vault.md §4); tests shorten it.
struct Timing {
  std::chrono::milliseconds min_ttl{30000};           // below: log in again instead of renewing
  std::chrono::milliseconds relogin_wait{3000};       // between login attempts
  std::chrono::milliseconds max_switch_delay{30000};  // replication-lag allowance cap
  std::chrono::milliseconds sealed_wait{1000};
  std::chrono::milliseconds retry_unit{1000};  // back-off: attempt n waits n × [1, 1.5) units
};

// Reads the VAULT_* variables (`env`), connects and logs in. Fails like
// upstream when the login fails.
Result<std::unique_ptr<KeyStore>> Open(const Config& config,
                                       const std::function<std::string(const char*)>& env,
                                       const Timing& timing = {});
// Same, with the process environment.
Result<std::unique_ptr<KeyStore>> Open(const Config& config);

}  // namespace kes::keystore::vault
