#include "loadgen/tls_client_context.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <array>
#include <memory>
#include <string_view>

namespace kes::bench {
namespace {

std::string OpenSslError(std::string_view what) {
  char buf[256];
  ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
  return std::string(what) + ": " + buf;
}

struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};

// An API key is "kes:v1:" + base64(0x00 || Ed25519 seed); a KES client
// presents a self-signed certificate for that key (api.md §2.2). The server
// only hashes the public key, so subject and lifetime here are arbitrary.
bool UseApiKey(SSL_CTX* ctx, std::string_view api_key, std::string* error) {
  constexpr std::string_view kPrefix = "kes:v1:";
  if (api_key.starts_with(kPrefix)) api_key.remove_prefix(kPrefix.size());
  std::array<uint8_t, 36> raw{};  // 44 base64 chars decode to 33 bytes (+ padding slack)
  int n = EVP_DecodeBlock(raw.data(), reinterpret_cast<const unsigned char*>(api_key.data()),
                          static_cast<int>(api_key.size()));
  if (api_key.size() != 44 || n != 33 || raw[0] != 0) {
    *error = "invalid API key";
    return false;
  }
  std::unique_ptr<EVP_PKEY, PkeyDeleter> key(
      EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, raw.data() + 1, 32));
  OPENSSL_cleanse(raw.data(), raw.size());
  if (!key) {
    *error = OpenSslError("API key");
    return false;
  }
  std::unique_ptr<X509, X509Deleter> cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 90L * 24 * 3600);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("kes-loadgen"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509_set_pubkey(cert.get(), key.get());
  if (X509_sign(cert.get(), key.get(), nullptr) <= 0 ||
      SSL_CTX_use_certificate(ctx, cert.get()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx, key.get()) != 1) {
    *error = OpenSslError("API key certificate");
    return false;
  }
  return true;
}

}  // namespace

SslCtxPtr MakeClientContext(const LoadConfig& config, std::string* error) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) {
    *error = OpenSslError("SSL_CTX_new");
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(ctx.get(), config.tls13_only ? TLS1_3_VERSION : TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  // One read(2) per batch of records instead of one per record header and body.
  SSL_CTX_set_read_ahead(ctx.get(), 1);
  SSL_CTX_set_session_cache_mode(ctx.get(),
                                 config.resume ? SSL_SESS_CACHE_CLIENT : SSL_SESS_CACHE_OFF);
  if (config.http2) {
    static const unsigned char kH2[] = {2, 'h', '2'};
    if (SSL_CTX_set_alpn_protos(ctx.get(), kH2, sizeof kH2) != 0) {
      *error = OpenSslError("ALPN");
      return nullptr;
    }
  }
  if (!config.api_key.empty()) {
    if (!UseApiKey(ctx.get(), config.api_key, error)) return nullptr;
  } else if (!config.cert_file.empty()) {
    const std::string& key = config.key_file.empty() ? config.cert_file : config.key_file;
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), config.cert_file.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx.get()) != 1) {
      *error = OpenSslError("client certificate");
      return nullptr;
    }
  }
  return ctx;
}

}  // namespace kes::bench
