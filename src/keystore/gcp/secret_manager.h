// The GCP Secret Manager keystore (keystores-cloud.md §2) over the REST API
// v1 (upstream speaks gRPC; same operations and semantics, HTTP statuses
// instead of gRPC codes): one secret per key, the stored value in its
// version 1.
#pragma once

#include <chrono>
#include <memory>

#include "common/status.h"
#include "keystore/gcp/config.h"
#include "keystore/gcp/credentials.h"
#include "keystore/keystore.h"

namespace kes::keystore::gcp {

struct Timing {
  std::chrono::milliseconds call_timeout{60000};  // upstream's per-call deadline
  std::chrono::milliseconds retry_initial{1000};  // Get's back-off on 429/503
  std::chrono::milliseconds retry_max{60000};
  std::chrono::milliseconds probe_timeout{10000};  // the status probe
};

// The REST base derived from `endpoint`: empty → https://secretmanager.googleapis.com;
// "host:port" (gRPC form, upstream's documented default) → https://host:port;
// a URL as given.
Result<net::Url> ApiOrigin(const std::string& endpoint);

// Reads GOOGLE_APPLICATION_CREDENTIALS, GCE_METADATA_HOST, HOME and
// SSL_CERT_FILE (a CA bundle replacing the system roots, as Go does) from
// `env`, probes the endpoint once and returns the keystore.
Result<std::unique_ptr<KeyStore>> Open(const Config& config, const Env& env,
                                       const Timing& timing = {});
Result<std::unique_ptr<KeyStore>> Open(const Config& config);

}  // namespace kes::keystore::gcp
