#include "identity/identity.h"

#include <openssl/crypto.h>
#include <openssl/x509v3.h>

#include <memory>

#include "crypto/encoding.h"
#include "crypto/hmac_key.h"
#include "identity/pem.h"

namespace kes::identity {
namespace {

// One DER TLV: the whole element and its contents.
struct Tlv {
  std::span<const uint8_t> element;
  std::span<const uint8_t> contents;
  uint8_t tag = 0;
};

// Reads the TLV at the start of `in` (definite lengths only, as DER requires).
std::optional<Tlv> ReadTlv(std::span<const uint8_t> in) {
  if (in.size() < 2) return std::nullopt;
  const uint8_t tag = in[0];
  if ((tag & 0x1f) == 0x1f) return std::nullopt;  // high tag numbers never occur here
  size_t pos = 1;
  size_t len = in[pos++];
  if (len & 0x80) {
    const size_t n = len & 0x7f;
    if (n == 0 || n > 4 || pos + n > in.size()) return std::nullopt;
    len = 0;
    for (size_t i = 0; i < n; ++i) len = len << 8 | in[pos++];
  }
  if (len > in.size() - pos) return std::nullopt;
  return Tlv{in.first(pos + len), in.subspan(pos, len), tag};
}

// The raw subjectPublicKeyInfo element of a DER certificate:
// Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL,
//   serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo, ... } ... }
std::optional<std::span<const uint8_t>> SliceSpki(std::span<const uint8_t> der) {
  auto cert = ReadTlv(der);
  if (!cert || cert->tag != 0x30) return std::nullopt;
  auto tbs = ReadTlv(cert->contents);
  if (!tbs || tbs->tag != 0x30) return std::nullopt;
  auto rest = tbs->contents;
  auto field = ReadTlv(rest);
  if (field && field->tag == 0xa0) {  // explicit [0] version
    rest = rest.subspan(field->element.size());
    field = ReadTlv(rest);
  }
  // serialNumber, signature, issuer, validity, subject
  for (int i = 0; i < 5; ++i) {
    if (!field) return std::nullopt;
    rest = rest.subspan(field->element.size());
    field = ReadTlv(rest);
  }
  if (!field || field->tag != 0x30) return std::nullopt;
  return field->element;
}

std::string HashToIdentity(std::span<const uint8_t> spki) {
  const auto sum = crypto::Sha256(spki);
  return crypto::HexEncode(sum);
}

}  // namespace

Result<std::string> IdentityOf(X509* cert) {
  if (cert == nullptr) return Status::Invalid("identity: no certificate");
  // For a parsed certificate i2d_X509 returns the cached original encoding,
  // so the SPKI is sliced from the bytes the peer actually sent.
  unsigned char* der = nullptr;
  const int len = i2d_X509(cert, &der);
  if (len <= 0) return Status::Invalid("identity: failed to encode certificate");
  auto spki = SliceSpki(std::span<const uint8_t>(der, static_cast<size_t>(len)));
  if (!spki) {
    OPENSSL_free(der);
    return Status::Invalid("identity: malformed certificate");
  }
  std::string identity = HashToIdentity(*spki);
  OPENSSL_free(der);
  return identity;
}

Result<std::string> IdentityOfDer(std::span<const uint8_t> der) {
  const unsigned char* p = der.data();
  CertificatePtr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!cert || p != der.data() + der.size()) {
    return Status::Invalid("x509: malformed certificate");
  }
  auto spki = SliceSpki(der);
  if (!spki) return Status::Invalid("x509: malformed certificate");
  return HashToIdentity(*spki);
}

Result<std::string> IdentityOfPemFile(const std::string& path) {
  KES_ASSIGN_OR_RETURN(auto certs, LoadCertificateFile(path));
  return IdentityOf(certs.front().get());
}

bool IsCA(X509* cert) {
  if (cert == nullptr) return false;
  int crit = 0;
  auto* bc = static_cast<BASIC_CONSTRAINTS*>(
      X509_get_ext_d2i(cert, NID_basic_constraints, &crit, nullptr));
  if (bc == nullptr) return false;
  const bool ca = bc->ca != 0;
  BASIC_CONSTRAINTS_free(bc);
  return ca;
}

namespace {

bool IsNameChar(char c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
         c == '-';
}

}  // namespace

bool IsValidName(std::string_view name) {
  if (name.empty() || name.size() > 80 || name == "_") return false;
  if (name.front() == '-' || name.back() == '-') return false;
  for (char c : name) {
    if (!IsNameChar(c)) return false;
  }
  return true;
}

bool IsValidPattern(std::string_view pattern) {
  if (pattern.empty() || pattern == "*") return true;
  if (pattern.size() > 80) return false;
  if (pattern.back() != '*') return IsValidName(pattern);
  // A prefix before the final '*' may end in '-' ("_-*" is valid upstream),
  // since the names it matches continue past it.
  pattern.remove_suffix(1);
  if (pattern.front() == '-') return false;
  for (char c : pattern) {
    if (!IsNameChar(c)) return false;
  }
  return true;
}

}  // namespace kes::identity
