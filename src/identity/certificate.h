// X.509 certificates and key files made by kes itself: what `kes identity
// new` writes (cli.md §3.4), the in-memory client certificate of an API key
// (api.md §2.2) and the `kes server --dev` server certificate (api.md §2.6.5).
// The CLI only parses flags and prints; every rule lives here.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "identity/api_key.h"

namespace kes::identity {

// What goes into a self-signed certificate. Key usage is always
// digitalSignature; basicConstraints is present and critical with CA:FALSE;
// the serial is random and < 2^128; not-before is now (UTC).
struct CertificateOptions {
  std::string common_name;                // the only subject (and issuer) attribute
  std::vector<std::string> dns_names;     // DNS SANs, in order
  std::vector<std::string> ip_addresses;  // IP SANs (IPv4 or IPv6 text), in order
  std::chrono::seconds lifetime{std::chrono::hours(24 * 90)};
  bool client_auth = true;   // extended key usage clientAuth
  bool server_auth = false;  // extended key usage serverAuth
};

// Signs a certificate for `key`'s public key with `key` itself (Ed25519
// without digest, ECDSA/RSA with SHA-256). Invalid IPs fail with
// "invalid string being converted to IP address: <ip>".
Result<CertificatePtr> CreateSelfSignedCertificate(EVP_PKEY* key, const CertificateOptions& opts);

Result<PrivateKeyPtr> GenerateEcdsaP256Key();

// 4 bytes for IPv4, 16 for IPv6; nullopt if `text` is no IP address.
std::optional<std::vector<uint8_t>> ParseIpAddress(std::string_view text);

// PEM "CERTIFICATE" block.
Result<std::string> CertificateToPem(X509* cert);
// PKCS#8 DER in a "PRIVATE KEY" block. A non-empty `password` encrypts it the
// legacy RFC 1423 way (Proc-Type/DEK-Info, AES-256-CBC), as upstream does.
Result<std::string> PrivateKeyToPem(EVP_PKEY* key, std::string_view password = {});

// ---- kes identity new -----------------------------------------------------

struct NewIdentityOptions {
  std::string subject;  // certificate CN; empty → the identity
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
  std::chrono::seconds expiry{0};  // 0 → 720h
};

struct NewIdentity {
  APIKey api_key;              // the Ed25519 key, printable as kes:v1:...
  std::string identity;        // 64 hex characters
  CertificatePtr certificate;  // clientAuth + serverAuth, self-signed
};

// A fresh Ed25519 key and its certificate (nothing is written).
Result<NewIdentity> CreateNewIdentity(const NewIdentityOptions& opts);

// Writes the private key (mode 0600) and then the certificate (mode 0644).
// Unless `force`, an existing key file fails with "private key already
// exists. Use --force to overwrite it" and an existing certificate with
// "certificate already exists. Use --force to overwrite it" (both checked
// before anything is written). Each file is written atomically (temporary
// file, fsync, rename); an overwritten file keeps its mode. If the
// certificate cannot be written the new key file is removed. Errors:
// "failed to create private key: <err>", "failed to create certificate: <err>".
Status WriteIdentityFiles(const std::string& key_path, std::string_view key_pem,
                          const std::string& cert_path, std::string_view cert_pem, bool force);

// Atomically writes `data` to `path` with `mode` (kept from an existing file
// when overwriting). Without `overwrite`, an existing path fails with
// Code::kAlreadyExists and is left untouched.
Status WriteFileAtomic(const std::string& path, std::string_view data, unsigned mode,
                       bool overwrite);

// ---- kes identity <FILE> ------------------------------------------------------

// What a PEM file says about an identity (cli.md §3.4): blocks are walked in
// order; the first CERTIFICATE gives the identity; a block whose type
// contains "PRIVATE KEY" must be PKCS#8 Ed25519 and gives the API key (and
// its identity); other block types are skipped.
struct IdentityFileContents {
  std::string identity;
  std::optional<APIKey> api_key;  // set when a private key block came first
};

// Errors: the file read error as-is ("open x: no such file or directory");
// "'<file>' contains unsupported private key. Only ed25519 private keys are
// supported"; "'<file>' contains no valid PEM certificate or private key".
Result<IdentityFileContents> ReadIdentityFile(const std::string& path);

// ---- kes server --dev -------------------------------------------------------

struct ServerCertificate {
  PrivateKeyPtr key;
  CertificatePtr certificate;
};

// ECDSA P-256, CN "localhost", 90 days, digitalSignature, EKU serverAuth,
// IP SANs = `ip_addresses` (no DNS SAN).
Result<ServerCertificate> GenerateDevServerCertificate(
    const std::vector<std::string>& ip_addresses);

}  // namespace kes::identity
