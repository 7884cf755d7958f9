// The AWS Secrets Manager keystore, optionally protected by an AWS KMS key
// (spec keystores.md §4, aws-protocol.md). One secret per KES key; the
// secret's SecretString is the stored key value.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "keystore/keystore.h"

namespace kes::keystore::aws {

struct SecretsManagerOptions {
  // Host name ("secretsmanager.us-east-1.amazonaws.com") or full URL
  // ("http://127.0.0.1:4566", "https://vpce-..."); empty means the regional
  // AWS endpoint.
  std::string endpoint;
  std::string region;
  std::string kms_key;  // KmsKeyId for new secrets; empty: AWS managed key
  // All three empty: the AWS credential chain (env, shared files, web
  // identity, ECS, IMDSv2).
  std::string access_key;
  std::string secret_key;
  std::string session_token;
  std::string ca_file;  // extra CA bundle for a private endpoint
};

// Validates the options and builds the keystore. Like upstream it probes
// the endpoint once; an unreachable endpoint is not fatal at start-up.
Result<std::unique_ptr<KeyStore>> NewSecretsManager(const SecretsManagerOptions& options);

}  // namespace kes::keystore::aws
