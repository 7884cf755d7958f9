// The Fortanix DSM (SDKMS) keystore (keystores-cloud.md §4): every key is an
// OPAQUE security object named like the key, holding the stored value,
// created in the configured group; every call authenticates with the API key
// (`Authorization: Basic <key>`). Connecting proves the key with a session
// login and logout; there is no background work.
#pragma once

#include <memory>

#include "common/status.h"
#include "keystore/fortanix/config.h"
#include "keystore/keystore.h"

namespace kes::keystore::fortanix {

// Names per listing page (upstream's `limit`).
inline constexpr int kListPage = 100;

// Checks DSM's health and the API key (fails start-up like upstream).
Result<std::unique_ptr<KeyStore>> Open(const Config& config);

}  // namespace kes::keystore::fortanix
