// PEM files for TLS (api.md §1.1, config.md §3.4, vectors:tls-*): blocks
// decoded with Go's encoding/pem rules, certificate files, private key files
// (plain, legacy RFC 1423 encrypted, PKCS#8 encrypted) and CA files or
// directories. Error messages are upstream's; callers add their prefix
// ("failed to read TLS certificate: ...").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "identity/api_key.h"  // PrivateKeyPtr, CertificatePtr

namespace kes::identity {

struct PemBlock {
  std::string type;                                          // e.g. "CERTIFICATE"
  std::vector<std::pair<std::string, std::string>> headers;  // in file order
  std::vector<uint8_t> bytes;                                // decoded body

  const std::string* Header(std::string_view name) const;
  // Legacy RFC 1423 encryption: a "Proc-Type: 4,ENCRYPTED" header.
  bool IsLegacyEncrypted() const;
};

// Finds the next well-formed block in `*rest` and advances `*rest` past it,
// skipping leading garbage and malformed blocks like Go's pem.Decode. On
// nullopt `*rest` is unchanged.
std::optional<PemBlock> DecodePemBlock(std::string_view* rest);
// 64-character base64 lines, headers first (Proc-Type before the others).
std::string EncodePemBlock(const PemBlock& block);

// Reads a whole file; errors read like Go's ("open <path>: no such file or directory").
Result<std::string> ReadFileToString(const std::string& path);

// Certificate file contents: whitespace-trimmed, non-empty, and every block a
// CERTIFICATE ("https: no valid PEM data" / "https: unsupported PEM data
// block"). Returns the certificates in file order (leaf first).
Result<std::vector<CertificatePtr>> ParseCertificatesPem(std::string_view text);
Result<std::vector<CertificatePtr>> LoadCertificateFile(const std::string& path);

// Private key file contents: the first block whose type is "PRIVATE KEY" or
// ends in " PRIVATE KEY" (CERTIFICATE and other blocks are skipped). PKCS#8,
// PKCS#1 RSA and SEC 1 EC keys are accepted. A legacy encrypted block or an
// "ENCRYPTED PRIVATE KEY" needs `password` ("https: private key is
// encrypted: password required"; a wrong one gives "x509: decryption
// password incorrect"); for an unencrypted key the password is ignored.
Result<PrivateKeyPtr> ParsePrivateKeyPem(std::string_view text, std::string_view password);
Result<PrivateKeyPtr> LoadPrivateKeyFile(const std::string& path, std::string_view password);
// Whether the first private key block of `text` needs a password (for the
// CLI's prompt).
bool IsEncryptedPrivateKeyPem(std::string_view text);

// CA certificates from a file, or from every non-directory entry of a
// directory (sub-directories are skipped). Every PEM block must be a
// CERTIFICATE. The system roots are not included; the TLS layer adds them.
Result<std::vector<CertificatePtr>> LoadCertificateAuthorities(const std::string& path);

// "tls: private key does not match public key" unless `key` belongs to `cert`.
Status CheckKeyMatchesCertificate(EVP_PKEY* key, X509* cert);

// Encodes a legacy RFC 1423 encrypted PEM block of `type` around `der`:
// AES-256-CBC, random IV, key from EVP_BytesToKey(MD5, salt = IV[0:8]),
// PKCS#7 padding (what Go's x509.EncryptPEMBlock writes).
Result<PemBlock> EncryptLegacyPemBlock(std::string_view type, std::span<const uint8_t> der,
                                       std::string_view password);

}  // namespace kes::identity
