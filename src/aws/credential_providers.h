// The credential sources of the AWS default chain (spec aws-protocol.md §8,
// keystores.md §4.3) and the chain itself.
//
// Chain order (documented choice, as botocore): static from the KES config →
// environment → shared credentials file, then shared config file (profile
// AWS_PROFILE) → web identity (STS AssumeRoleWithWebIdentity) → container
// (ECS/EKS) → EC2 instance metadata (IMDSv2, v1 fallback).
//
// A provider answers Code::kNotFound when its source is not configured, so
// the chain moves on; any other error means the source is configured but
// broken, and the chain stops with that error (naming the source).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "aws/credentials.h"
#include "net/http_client.h"

namespace kes::aws {

// Reads an environment variable; empty when unset. Injected for tests.
using EnvLookup = std::function<std::string(std::string_view)>;
EnvLookup SystemEnv();

std::shared_ptr<CredentialProvider> NewStaticProvider(Credentials credentials);
std::shared_ptr<CredentialProvider> NewEnvProvider(EnvLookup env);
// AWS_SHARED_CREDENTIALS_FILE (default ~/.aws/credentials), then
// AWS_CONFIG_FILE (default ~/.aws/config); profile AWS_PROFILE or "default".
std::shared_ptr<CredentialProvider> NewSharedFileProvider(EnvLookup env);
// AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN (+ AWS_ROLE_SESSION_NAME). The STS
// endpoint is https://sts.<region>.amazonaws.com unless AWS_ENDPOINT_URL_STS
// overrides it. It is never the Secrets Manager endpoint (upstream bug
// minio/kes#495).
std::shared_ptr<CredentialProvider> NewWebIdentityProvider(EnvLookup env, std::string region,
                                                           std::shared_ptr<net::HttpClient> http);
std::shared_ptr<CredentialProvider> NewContainerProvider(EnvLookup env,
                                                         std::shared_ptr<net::HttpClient> http);
std::shared_ptr<CredentialProvider> NewImdsProvider(EnvLookup env,
                                                    std::shared_ptr<net::HttpClient> http);

std::shared_ptr<CredentialProvider> NewChainProvider(
    std::vector<std::shared_ptr<CredentialProvider>> providers);

// The whole default chain (without static config credentials), wrapped in a
// CachingProvider that refreshes temporary credentials in the background.
std::shared_ptr<CredentialProvider> NewDefaultChain(const EnvLookup& env, std::string region,
                                                    const std::string& ca_file = {});

// The JSON credential document of the container and instance metadata
// endpoints (AccessKeyId, SecretAccessKey, Token, Expiration; Code/Message
// on failure). `source` names the provider in errors.
Result<CredentialsPtr> ParseCredentialJson(std::string_view body, const char* source);

// Parses "2026-01-15T09:05:09Z" (optional fraction, "Z" or "±hh:mm").
std::optional<Clock::time_point> ParseIso8601(std::string_view text);

}  // namespace kes::aws
