#include "identity/certificate.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <memory>

#include "common/os.h"
#include "crypto/random.h"
#include "crypto/secret_bytes.h"
#include "identity/identity.h"
#include "identity/pem.h"

namespace kes::identity {
namespace {

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};

Status AddExtension(X509* cert, int nid, bool critical, void* value) {
  if (X509_add1_ext_i2d(cert, nid, value, critical ? 1 : 0, X509V3_ADD_DEFAULT) != 1) {
    return Status::Internal("x509: failed to add certificate extension");
  }
  return Status::Ok();
}

Status SetRandomSerial(X509* cert) {
  std::array<uint8_t, 16> raw;  // uniform in [0, 2^128), like Go's rand.Int
  KES_TRY(crypto::RandomBytes(raw));
  std::unique_ptr<BIGNUM, decltype(&BN_free)> bn(BN_bin2bn(raw.data(), 16, nullptr), &BN_free);
  if (!bn) return Status::Internal("x509: failed to create serial number");
  ASN1_INTEGER* serial = X509_get_serialNumber(cert);
  if (BN_to_ASN1_INTEGER(bn.get(), serial) == nullptr) {
    return Status::Internal("x509: failed to set serial number");
  }
  return Status::Ok();
}

std::string DirOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

std::optional<std::vector<uint8_t>> ParseIpAddress(std::string_view text) {
  const std::string s(text);
  std::vector<uint8_t> out(16);
  if (inet_pton(AF_INET, s.c_str(), out.data()) == 1) {
    out.resize(4);
    return out;
  }
  if (inet_pton(AF_INET6, s.c_str(), out.data()) == 1) return out;
  return std::nullopt;
}

Result<CertificatePtr> CreateSelfSignedCertificate(EVP_PKEY* key, const CertificateOptions& opts) {
  if (key == nullptr) return Status::Invalid("x509: no private key");
  CertificatePtr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1) {
    return Status::Internal("x509: failed to create certificate");
  }
  KES_TRY(SetRandomSerial(cert.get()));

  X509_NAME* name = X509_get_subject_name(cert.get());
  if (X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(opts.common_name.c_str()),
                                 static_cast<int>(opts.common_name.size()), -1, 0) != 1 ||
      X509_set_issuer_name(cert.get(), name) != 1) {
    return Status::Invalid("x509: invalid certificate subject");
  }
  if (X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0) == nullptr ||
      X509_time_adj_ex(X509_getm_notAfter(cert.get()),
                       static_cast<int>(opts.lifetime.count() / 86400),
                       static_cast<long>(opts.lifetime.count() % 86400), nullptr) == nullptr) {
    return Status::Internal("x509: failed to set validity");
  }
  if (X509_set_pubkey(cert.get(), key) != 1) {
    return Status::Internal("x509: failed to set public key");
  }

  // Extensions in Go's order: key usage, extended key usage, basic
  // constraints, subject alternative names.
  {
    std::unique_ptr<ASN1_BIT_STRING, decltype(&ASN1_BIT_STRING_free)> ku(ASN1_BIT_STRING_new(),
                                                                         &ASN1_BIT_STRING_free);
    if (!ku || ASN1_BIT_STRING_set_bit(ku.get(), 0, 1) != 1) {  // digitalSignature
      return Status::Internal("x509: failed to set key usage");
    }
    KES_TRY(AddExtension(cert.get(), NID_key_usage, true, ku.get()));
  }
  if (opts.server_auth || opts.client_auth) {
    std::unique_ptr<EXTENDED_KEY_USAGE, decltype(&EXTENDED_KEY_USAGE_free)> eku(
        sk_ASN1_OBJECT_new_null(), &EXTENDED_KEY_USAGE_free);
    if (!eku) return Status::Internal("x509: failed to set extended key usage");
    if (opts.client_auth) sk_ASN1_OBJECT_push(eku.get(), OBJ_nid2obj(NID_client_auth));
    if (opts.server_auth) sk_ASN1_OBJECT_push(eku.get(), OBJ_nid2obj(NID_server_auth));
    KES_TRY(AddExtension(cert.get(), NID_ext_key_usage, false, eku.get()));
  }
  {
    std::unique_ptr<BASIC_CONSTRAINTS, decltype(&BASIC_CONSTRAINTS_free)> bc(
        BASIC_CONSTRAINTS_new(), &BASIC_CONSTRAINTS_free);
    if (!bc) return Status::Internal("x509: failed to set basic constraints");
    bc->ca = 0;
    KES_TRY(AddExtension(cert.get(), NID_basic_constraints, true, bc.get()));
  }
  if (!opts.dns_names.empty() || !opts.ip_addresses.empty()) {
    std::unique_ptr<GENERAL_NAMES, decltype(&GENERAL_NAMES_free)> sans(sk_GENERAL_NAME_new_null(),
                                                                       &GENERAL_NAMES_free);
    if (!sans) return Status::Internal("x509: failed to set SANs");
    for (const auto& dns : opts.dns_names) {
      GENERAL_NAME* gn = GENERAL_NAME_new();
      ASN1_IA5STRING* s = ASN1_IA5STRING_new();
      if (gn == nullptr || s == nullptr ||
          ASN1_STRING_set(s, dns.data(), static_cast<int>(dns.size())) != 1) {
        GENERAL_NAME_free(gn);
        ASN1_IA5STRING_free(s);
        return Status::Internal("x509: failed to set DNS SAN");
      }
      GENERAL_NAME_set0_value(gn, GEN_DNS, s);
      sk_GENERAL_NAME_push(sans.get(), gn);
    }
    for (const auto& ip : opts.ip_addresses) {
      auto raw = ParseIpAddress(ip);
      if (!raw) return Status::Invalid("invalid string being converted to IP address: " + ip);
      GENERAL_NAME* gn = GENERAL_NAME_new();
      ASN1_OCTET_STRING* s = ASN1_OCTET_STRING_new();
      if (gn == nullptr || s == nullptr ||
          ASN1_OCTET_STRING_set(s, raw->data(), static_cast<int>(raw->size())) != 1) {
        GENERAL_NAME_free(gn);
        ASN1_OCTET_STRING_free(s);
        return Status::Internal("x509: failed to set IP SAN");
      }
      GENERAL_NAME_set0_value(gn, GEN_IPADD, s);
      sk_GENERAL_NAME_push(sans.get(), gn);
    }
    KES_TRY(AddExtension(cert.get(), NID_subject_alt_name, false, sans.get()));
  }

  const bool no_digest =
      EVP_PKEY_get_id(key) == EVP_PKEY_ED25519 || EVP_PKEY_get_id(key) == EVP_PKEY_ED448;
  if (X509_sign(cert.get(), key, no_digest ? nullptr : EVP_sha256()) <= 0) {
    return Status::Internal("x509: failed to sign certificate");
  }
  return cert;
}

Result<PrivateKeyPtr> GenerateEcdsaP256Key() {
  PrivateKeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return Status::Internal("crypto: failed to generate ECDSA P-256 key");
  return key;
}

Result<std::string> CertificateToPem(X509* cert) {
  unsigned char* der = nullptr;
  const int len = i2d_X509(cert, &der);
  if (len <= 0) return Status::Internal("x509: failed to encode certificate");
  PemBlock block{"CERTIFICATE", {}, std::vector<uint8_t>(der, der + len)};
  OPENSSL_free(der);
  return EncodePemBlock(block);
}

Result<std::string> PrivateKeyToPem(EVP_PKEY* key, std::string_view password) {
  PKCS8_PRIV_KEY_INFO* p8 = EVP_PKEY2PKCS8(key);
  if (p8 == nullptr) return Status::Internal("x509: failed to encode private key");
  unsigned char* der = nullptr;
  const int len = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
  PKCS8_PRIV_KEY_INFO_free(p8);
  if (len <= 0) return Status::Internal("x509: failed to encode private key");
  crypto::SecretBytes bytes(std::span<const uint8_t>(der, static_cast<size_t>(len)));
  OPENSSL_clear_free(der, static_cast<size_t>(len));

  PemBlock block;
  if (password.empty()) {
    block.type = "PRIVATE KEY";
    block.bytes.assign(bytes.data(), bytes.data() + bytes.size());
  } else {
    KES_ASSIGN_OR_RETURN(block, EncryptLegacyPemBlock("PRIVATE KEY", bytes.span(), password));
  }
  std::string pem = EncodePemBlock(block);
  crypto::Zeroize(block.bytes.data(), block.bytes.size());
  return pem;
}

Result<NewIdentity> CreateNewIdentity(const NewIdentityOptions& opts) {
  KES_ASSIGN_OR_RETURN(APIKey key, APIKey::Generate());
  std::string identity = key.Identity();
  CertificateOptions cert_opts;
  cert_opts.common_name = opts.subject.empty() ? identity : opts.subject;
  cert_opts.dns_names = opts.dns_names;
  cert_opts.ip_addresses = opts.ip_addresses;
  cert_opts.lifetime = opts.expiry.count() > 0 ? opts.expiry : std::chrono::hours(720);
  cert_opts.client_auth = true;
  cert_opts.server_auth = true;
  KES_ASSIGN_OR_RETURN(CertificatePtr cert,
                       CreateSelfSignedCertificate(key.private_key(), cert_opts));
  return NewIdentity{std::move(key), std::move(identity), std::move(cert)};
}

Status WriteFileAtomic(const std::string& path, std::string_view data, unsigned mode,
                       bool overwrite) {
  struct stat existing {};
  const bool exists = ::lstat(path.c_str(), &existing) == 0;
  if (exists && !overwrite) return {Code::kAlreadyExists, 400, "file exists"};
  if (exists && S_ISREG(existing.st_mode)) mode = existing.st_mode & 07777;

  std::string tmp = path + ".tmp-XXXXXX";
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) return Status::Invalid("open " + path + ": " + GoErrnoText(errno));
  auto fail = [&](int err) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return Status::Invalid("write " + path + ": " + GoErrnoText(err));
  };
  if (::fchmod(fd, static_cast<mode_t>(mode)) != 0) return fail(errno);
  for (size_t off = 0; off < data.size();) {
    const ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(errno);
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return fail(errno);
  ::close(fd);

  // link() refuses an existing target, so a file created meanwhile is never
  // clobbered; rename() replaces atomically when overwriting is allowed.
  if (overwrite) {
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      const int err = errno;
      ::unlink(tmp.c_str());
      return Status::Invalid("open " + path + ": " + GoErrnoText(err));
    }
  } else {
    const int rc = ::link(tmp.c_str(), path.c_str());
    const int err = errno;
    ::unlink(tmp.c_str());
    if (rc != 0) {
      if (err == EEXIST) return {Code::kAlreadyExists, 400, "file exists"};
      return Status::Invalid("open " + path + ": " + GoErrnoText(err));
    }
  }
  const int dir = ::open(DirOf(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return Status::Ok();
}

Status WriteIdentityFiles(const std::string& key_path, std::string_view key_pem,
                          const std::string& cert_path, std::string_view cert_pem, bool force) {
  struct stat st {};
  if (!force && ::stat(key_path.c_str(), &st) == 0) {
    return {Code::kAlreadyExists, 400, "private key already exists. Use --force to overwrite it"};
  }
  if (!force && ::stat(cert_path.c_str(), &st) == 0) {
    return {Code::kAlreadyExists, 400, "certificate already exists. Use --force to overwrite it"};
  }
  Status s = WriteFileAtomic(key_path, key_pem, 0600, force);
  if (s.code() == Code::kAlreadyExists) {
    return {Code::kAlreadyExists, 400, "private key already exists. Use --force to overwrite it"};
  }
  if (!s.ok()) return s.WithContext("failed to create private key");
  s = WriteFileAtomic(cert_path, cert_pem, 0644, force);
  if (!s.ok()) {
    ::unlink(key_path.c_str());
    if (s.code() == Code::kAlreadyExists) {
      return {Code::kAlreadyExists, 400, "certificate already exists. Use --force to overwrite it"};
    }
    return s.WithContext("failed to create certificate");
  }
  return Status::Ok();
}

Result<IdentityFileContents> ReadIdentityFile(const std::string& path) {
  KES_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  struct Wipe {
    std::string& s;
    ~Wipe() { crypto::Zeroize(s.data(), s.size()); }
  } wipe{text};
  const std::string no_pem = "'" + path + "' contains no valid PEM certificate or private key";
  std::string_view rest = text;
  while (true) {
    while (!rest.empty() && std::isspace(static_cast<unsigned char>(rest.front()))) {
      rest.remove_prefix(1);
    }
    if (rest.empty()) break;
    auto block = DecodePemBlock(&rest);
    if (!block) break;
    if (block->type == "CERTIFICATE") {
      KES_ASSIGN_OR_RETURN(std::string id, IdentityOfDer(block->bytes));
      return IdentityFileContents{std::move(id), std::nullopt};
    }
    if (block->type.find("PRIVATE KEY") == std::string::npos) continue;
    const unsigned char* p = block->bytes.data();
    PKCS8_PRIV_KEY_INFO* p8 =
        d2i_PKCS8_PRIV_KEY_INFO(nullptr, &p, static_cast<long>(block->bytes.size()));
    crypto::Zeroize(block->bytes.data(), block->bytes.size());
    PrivateKeyPtr key(p8 != nullptr ? EVP_PKCS82PKEY(p8) : nullptr);
    PKCS8_PRIV_KEY_INFO_free(p8);
    if (!key) return Status::Invalid("x509: failed to parse private key");
    if (EVP_PKEY_get_id(key.get()) != EVP_PKEY_ED25519) {
      return Status::Invalid("'" + path +
                             "' contains unsupported private key. Only ed25519 private keys are "
                             "supported");
    }
    KES_ASSIGN_OR_RETURN(APIKey api_key, APIKey::FromPrivateKey(key.get()));
    std::string id = api_key.Identity();
    return IdentityFileContents{std::move(id), std::move(api_key)};
  }
  return Status::Invalid(no_pem);
}

Result<ServerCertificate> GenerateDevServerCertificate(
    const std::vector<std::string>& ip_addresses) {
  KES_ASSIGN_OR_RETURN(PrivateKeyPtr key, GenerateEcdsaP256Key());
  CertificateOptions opts;
  opts.common_name = "localhost";
  opts.ip_addresses = ip_addresses;
  opts.lifetime = std::chrono::hours(24 * 90);
  opts.client_auth = false;
  opts.server_auth = true;
  KES_ASSIGN_OR_RETURN(CertificatePtr cert, CreateSelfSignedCertificate(key.get(), opts));
  return ServerCertificate{std::move(key), std::move(cert)};
}

}  // namespace kes::identity
