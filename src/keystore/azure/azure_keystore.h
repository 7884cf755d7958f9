// The Azure Key Vault keystore (keystores.md §7, keystores-cloud.md §1): one
// secret per key, named like the key, holding the stored value; Key Vault's
// bearer challenge; soft-deleted secrets purged on delete and on re-create.
#pragma once

#include <chrono>
#include <memory>

#include "common/status.h"
#include "keystore/azure/config.h"
#include "keystore/azure/credential.h"
#include "keystore/keystore.h"

namespace kes::keystore::azure {

// Retry and wait timing (keystores-cloud.md §1.4, §1.6); tests shorten it.
struct Timing {
  int max_retries = 7;
  std::chrono::milliseconds retry_unit{200};  // try n waits (2^n - 1) × unit × [0.8, 1.3)
  std::chrono::milliseconds retry_cap{800};
  std::chrono::milliseconds purge_wait_min{200};  // after a 409 ObjectIsBeingDeleted
  std::chrono::milliseconds purge_wait_max{1000};
  std::chrono::milliseconds imds_retry_unit{2000};
};

// Reads the AZURE_* and SSL_CERT_FILE variables (`env`) and builds the
// keystore. No network I/O: like upstream, credentials are first used by
// the first key operation.
Result<std::unique_ptr<KeyStore>> Open(const Config& config, const Env& env,
                                       const Timing& timing = {});
// Same, with the process environment.
Result<std::unique_ptr<KeyStore>> Open(const Config& config);

}  // namespace kes::keystore::azure
