// AWS credentials and the providers that resolve them (spec
// aws-protocol.md §8, keystores.md §4.3).
//
// A Credentials value is one consistent set: the key id, secret and session
// token always come from the same resolution, so a request is never signed
// with the id of one set and the secret of another. Secrets are wiped when a
// set is destroyed, and never appear in messages or logs.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "common/status.h"

namespace kes::aws {

using Clock = std::chrono::system_clock;

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;                    // empty for long-term keys
  std::optional<Clock::time_point> expiration;  // temporary credentials only
  std::string source;  // "static", "environment", "shared-file", ... for messages

  Credentials() = default;
  Credentials(std::string id, std::string secret, std::string token = {})
      : access_key_id(std::move(id)),
        secret_access_key(std::move(secret)),
        session_token(std::move(token)) {}
  Credentials(const Credentials&) = default;
  Credentials& operator=(const Credentials&) = default;
  Credentials(Credentials&&) = default;
  Credentials& operator=(Credentials&&) = default;
  ~Credentials();
};

using CredentialsPtr = std::shared_ptr<const Credentials>;

// A source of credentials. Retrieve() may block (files, network).
// NotFound: the source is not configured (the chain moves on).
// Any other error: the source is configured but broken (the chain stops).
class CredentialProvider {
 public:
  virtual ~CredentialProvider() = default;
  virtual Result<CredentialsPtr> Retrieve() = 0;
  virtual std::string Name() const = 0;
  // The last credentials were rejected (expired token): the next Retrieve()
  // must fetch fresh ones. No-op for sources without a cache.
  virtual void Invalidate() {}
};

}  // namespace kes::aws
