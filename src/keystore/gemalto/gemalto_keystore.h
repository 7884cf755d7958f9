// The Thales CipherTrust Manager / Gemalto KeySecure keystore
// (keystores-cloud.md §3): every key is a vault secret of type `seed` named
// like the key, whose material is the stored value. A refresh-token login at
// connect yields a JWT that a background loop renews at half its lifetime.
#pragma once

#include <chrono>
#include <memory>

#include "common/status.h"
#include "keystore/gemalto/config.h"
#include "keystore/keystore.h"

namespace kes::keystore::gemalto {

// Timeouts and waits (keystores-cloud.md §3; docs/compatibility.md records
// the values where upstream had none). Tests shorten them.
struct Timing {
  std::chrono::milliseconds connect_timeout{10000};  // dial, as upstream
  std::chrono::milliseconds request_timeout{30000};  // per try; upstream: none
  std::chrono::milliseconds status_timeout{10000};   // the status probe; upstream: none
  std::chrono::milliseconds relogin_wait{5000};      // after a failed renewal login
  std::chrono::milliseconds login_deadline{60000};   // one login, retries included
};

// Reads tls.ca, logs in and starts the renewal loop. Fails with the login's
// error text when the login fails.
Result<std::unique_ptr<KeyStore>> Open(const Config& config, const Timing& timing = {});

}  // namespace kes::keystore::gemalto
