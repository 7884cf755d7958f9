// Client connection settings from flags and environment, in upstream's
// order (spec cli.md §1.4), and the process-wide interrupt flag.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "client/client.h"
#include "common/status.h"

namespace kes::cli {

// First variable that is *present* (even if empty), else nullopt.
std::optional<std::string> LookupEnv(std::initializer_list<const char*> names);

std::string EndpointEnv();  // MINIO_KES_SERVER, KES_SERVER, MINIO_KMS_KES_ENDPOINT, 127.0.0.1:7373
std::string APIKeyEnv();    // MINIO_KES_API_KEY, KES_API_KEY, MINIO_KMS_KES_API_KEY

struct ConnectOptions {
  bool insecure = false;
  std::optional<std::string> server;   // `kes ls -s`
  std::optional<std::string> api_key;  // `kes ls -a`
};

// Validates the credential settings and builds a client. Error messages
// are upstream's (e.g. "no API key specified. Consider setting MINIO_KES_API_KEY").
Result<std::unique_ptr<client::Client>> Connect(const ConnectOptions& opts);

// Set by SIGINT/SIGTERM once InstallInterruptHandler ran.
const std::atomic<bool>& Interrupted();
void InstallInterruptHandler();

// The one-line hint printed after a certificate verification failure.
std::string TrustHint();

// Prints a client error: "Error: <prefix><message>" plus, for a failed
// server certificate verification, the trust hint. Returns 1.
int FailRequest(const Status& s, const std::string& prefix = {});

}  // namespace kes::cli
