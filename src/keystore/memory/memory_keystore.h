// The in-memory keystore of `kes server --dev` (keystores.md §1.1): keys
// live in process memory and are lost on exit.
#pragma once

#include <memory>

#include "keystore/keystore.h"

namespace kes::keystore {

// Display name "In Memory"; Status always succeeds with 1 ms latency.
std::unique_ptr<KeyStore> NewMemoryKeyStore();

}  // namespace kes::keystore
