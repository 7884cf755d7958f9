// Identities (api.md §2.1): lowercase hex SHA-256 of a certificate's raw
// DER SubjectPublicKeyInfo, and name validation rules (api.md §3.2).
#pragma once

#include <openssl/x509.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/status.h"

namespace kes::identity {

// Identity of a parsed certificate (hash of its raw SPKI bytes).
Result<std::string> IdentityOf(X509* cert);
// Identity of a DER-encoded certificate.
Result<std::string> IdentityOfDer(std::span<const uint8_t> der);
// Identity of the first certificate in a PEM file.
Result<std::string> IdentityOfPemFile(const std::string& path);

// True if the certificate has basicConstraints with cA = TRUE.
bool IsCA(X509* cert);

// Names of keys, policies, identities: 1-80 bytes of [0-9A-Za-z_-], not
// starting or ending with '-', and not exactly "_".
bool IsValidName(std::string_view name);
// Listing patterns: as names, plus '*' as the last character; "" and "*" valid.
bool IsValidPattern(std::string_view pattern);

}  // namespace kes::identity
