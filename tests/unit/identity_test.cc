// Identity module: API keys, certificate identities, names, policies, PEM
// loading and the certificates kes creates — every vector of the identity
// groups plus malformed input.
#include "identity/identity.h"

#include <gtest/gtest.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "crypto/encoding.h"
#include "crypto/hmac_key.h"
#include "identity/api_key.h"
#include "identity/certificate.h"
#include "identity/pem.h"
#include "identity/policy.h"
#include "vectors.h"

namespace kes::identity {
namespace {

namespace fs = std::filesystem;
using kes::testing::VectorGroup;
using Json = nlohmann::json;

// A fresh directory under the system temp dir, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "kes-identity-test-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string Path(const std::string& rel) const { return (fs::path(path_) / rel).string(); }
  void Write(const std::string& rel, const std::string& text) const {
    fs::create_directories(fs::path(Path(rel)).parent_path());
    std::ofstream(Path(rel), std::ios::binary) << text;
  }

 private:
  std::string path_;
};

CertificatePtr ParseOneCert(const std::string& pem) {
  auto certs = ParseCertificatesPem(pem);
  EXPECT_TRUE(certs.ok()) << certs.status().message();
  if (!certs.ok()) return nullptr;
  return std::move(certs->front());
}

std::string SpkiHexViaOpenSsl(X509* cert) {
  unsigned char* der = nullptr;
  const int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
  std::string hex = crypto::HexEncode(std::span<const uint8_t>(der, static_cast<size_t>(len)));
  OPENSSL_free(der);
  return hex;
}

std::string Sha256Hex(const std::string& hex) {
  auto bytes = crypto::HexDecode(hex);
  EXPECT_TRUE(bytes.has_value());
  return crypto::HexEncode(crypto::Sha256(*bytes));
}

// Runs a shell command and returns its stdout.
std::string RunShell(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

bool HaveOpenSslCli() { return std::system("openssl version >/dev/null 2>&1") == 0; }

// ---- API keys ---------------------------------------------------------------

TEST(IdentityVectors, ApiKeyParse) {
  int run = 0;
  for (const auto& v : VectorGroup("api_key_parse")) {
    SCOPED_TRACE(v.at("id").get<std::string>());
    auto key = APIKey::Parse(v.at("input").at("api_key").get<std::string>());
    ++run;
    if (v.at("expected").at("should_fail").get<bool>()) {
      EXPECT_FALSE(key.ok());
      continue;
    }
    ASSERT_TRUE(key.ok()) << key.status().message();
    EXPECT_EQ(key->String(), v.at("expected").at("string_roundtrip").get<std::string>());
    if (v.contains("derived")) {
      EXPECT_EQ(key->Identity(), v.at("derived").at("identity").get<std::string>());
    }
  }
  EXPECT_GT(run, 0);
}

TEST(IdentityVectors, ApiKeyIdentity) {
  int run = 0;
  for (const auto& v : VectorGroup("api_key_identity")) {
    SCOPED_TRACE(v.at("id").get<std::string>());
    auto key = APIKey::Parse(v.at("input").at("api_key").get<std::string>());
    ASSERT_TRUE(key.ok());
    EXPECT_EQ(key->Identity(), v.at("expected").at("identity").get<std::string>());
    // The SDK's client certificate has the same identity.
    auto cert = key->GenerateCertificate();
    ASSERT_TRUE(cert.ok()) << cert.status().message();
    auto id = IdentityOf(cert->get());
    ASSERT_TRUE(id.ok());
    EXPECT_EQ(*id, key->Identity());
    EXPECT_EQ(SpkiHexViaOpenSsl(cert->get()),
              v.at("derived").at("spki_der_hex").get<std::string>());
    ++run;
  }
  EXPECT_GT(run, 0);
}

TEST(ApiKeyTest, ParseErrorsAndPrefix) {
  auto no_prefix = APIKey::Parse("AD9E7FSYWrMD+VjhI6q545cYT9YOyFxZb7UnjEepYDRc");
  ASSERT_TRUE(no_prefix.ok());
  EXPECT_EQ(no_prefix->String(), "kes:v1:AD9E7FSYWrMD+VjhI6q545cYT9YOyFxZb7UnjEepYDRc");
  auto short_key = APIKey::Parse("kes:v1:AAAA");
  ASSERT_FALSE(short_key.ok());
  EXPECT_EQ(short_key.status().message(), "invalid API key: invalid length");
  // 33 bytes with a non-zero type byte.
  std::vector<uint8_t> raw(33, 7);
  auto bad_type = APIKey::Parse("kes:v1:" + crypto::Base64Encode(raw));
  ASSERT_FALSE(bad_type.ok());
  EXPECT_EQ(bad_type.status().message(), "invalid API key: unsupported type");
  EXPECT_FALSE(APIKey::Parse("").ok());
  EXPECT_FALSE(APIKey::Parse("kes:v1:").ok());
  auto bad_b64 = APIKey::Parse("kes:v1:AD9E7FSYW!MD+VjhI6q545cYT9YOyFxZb7UnjEepYDRc");
  ASSERT_FALSE(bad_b64.ok());
  EXPECT_EQ(bad_b64.status().message(), "illegal base64 data at input byte 9");
}

TEST(ApiKeyTest, GeneratedKeysAndTheirCertificate) {
  auto a = APIKey::Generate();
  auto b = APIKey::Generate();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->String(), b->String());
  EXPECT_EQ(a->String().size(), 51u);
  EXPECT_EQ(a->Identity().size(), 64u);
  auto again = APIKey::Parse(a->String());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->Identity(), a->Identity());
  auto from_pkey = APIKey::FromPrivateKey(a->private_key());
  ASSERT_TRUE(from_pkey.ok());
  EXPECT_EQ(from_pkey->String(), a->String());

  auto cert = a->GenerateCertificate();
  ASSERT_TRUE(cert.ok());
  X509* c = cert->get();
  EXPECT_EQ(X509_verify(c, a->private_key()), 1);  // self-signed with the key
  EXPECT_FALSE(IsCA(c));
  char cn[128] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(c), NID_commonName, cn, sizeof cn);
  EXPECT_EQ(std::string(cn), a->Identity());
  EXPECT_EQ(X509_NAME_cmp(X509_get_subject_name(c), X509_get_issuer_name(c)), 0);
  EXPECT_EQ(X509_get_key_usage(c), static_cast<uint32_t>(KU_DIGITAL_SIGNATURE));
  EXPECT_EQ(X509_get_extended_key_usage(c), static_cast<uint32_t>(XKU_SSL_CLIENT));
  int days = 0, secs = 0;
  ASSERT_EQ(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(c), X509_get0_notAfter(c)), 1);
  EXPECT_EQ(days, 90);
  EXPECT_LE(secs, 1);
  const BIGNUM* serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(c), nullptr);
  EXPECT_LE(BN_num_bits(serial), 128);
  BN_free(const_cast<BIGNUM*>(serial));
  EXPECT_EQ(CheckKeyMatchesCertificate(a->private_key(), c), Status::Ok());
  EXPECT_FALSE(CheckKeyMatchesCertificate(b->private_key(), c).ok());
}

// ---- certificate identities ------------------------------------------------------

TEST(IdentityVectors, CertificateIdentity) {
  int run = 0;
  for (const auto& v : VectorGroup("certificate_identity")) {
    SCOPED_TRACE(v.at("id").get<std::string>());
    const auto& in = v.at("input");
    CertificatePtr cert = ParseOneCert(in.at("certificate_pem").get<std::string>());
    ASSERT_TRUE(cert);
    const std::string want = v.at("expected").contains("identity")
                                 ? v.at("expected").at("identity").get<std::string>()
                                 : v.at("derived").at("identity").get<std::string>();
    auto id = IdentityOf(cert.get());
    ASSERT_TRUE(id.ok());
    EXPECT_EQ(*id, want);
    // Raw SPKI bytes and OpenSSL's re-encoding agree, and hash to the identity.
    const std::string spki = v.at("derived").at("spki_der_hex").get<std::string>();
    EXPECT_EQ(SpkiHexViaOpenSsl(cert.get()), spki);
    EXPECT_EQ(Sha256Hex(spki), want);
    // From the DER bytes too.
    unsigned char* der = nullptr;
    const int len = i2d_X509(cert.get(), &der);
    auto id_der = IdentityOfDer(std::span<const uint8_t>(der, static_cast<size_t>(len)));
    OPENSSL_free(der);
    ASSERT_TRUE(id_der.ok());
    EXPECT_EQ(*id_der, want);
    EXPECT_FALSE(IsCA(cert.get()));
    if (in.contains("private_key_pem")) {
      auto key = ParsePrivateKeyPem(in.at("private_key_pem").get<std::string>(), "");
      ASSERT_TRUE(key.ok()) << key.status().message();
      EXPECT_TRUE(CheckKeyMatchesCertificate(key->get(), cert.get()).ok());
      auto api = APIKey::FromPrivateKey(key->get());
      ASSERT_TRUE(api.ok());
      EXPECT_EQ(api->String(), v.at("derived").at("api_key_of_private_key").get<std::string>());
      EXPECT_EQ(api->Identity(), want);
    }
    ++run;
  }
  EXPECT_GT(run, 0);
}

TEST(IdentityTest, IsCAAndMalformedDer) {
  if (!HaveOpenSslCli()) GTEST_SKIP() << "openssl CLI not available";
  const std::string pem = RunShell(
      "openssl req -x509 -newkey ed25519 -nodes -keyout /dev/null -subj /CN=ca -days 1 "
      "-addext basicConstraints=critical,CA:TRUE 2>/dev/null");
  CertificatePtr ca = ParseOneCert(pem);
  ASSERT_TRUE(ca);
  EXPECT_TRUE(IsCA(ca.get()));
  EXPECT_FALSE(IsCA(nullptr));
  EXPECT_FALSE(IdentityOfDer(std::vector<uint8_t>{0x30, 0x03, 0x02, 0x01}).ok());
  EXPECT_FALSE(IdentityOfDer(std::vector<uint8_t>{}).ok());
}

// ---- names and patterns ------------------------------------------------------------

TEST(IdentityVectors, ValidName) {
  int run = 0;
  for (const auto& v : VectorGroup("valid_name")) {
    SCOPED_TRACE(v.at("id").get<std::string>());
    EXPECT_EQ(IsValidName(v.at("input").at("name").get<std::string>()),
              v.at("expected").at("valid").get<bool>());
    ++run;
  }
  EXPECT_GT(run, 0);
  EXPECT_TRUE(IsValidName(std::string(80, 'a')));
  EXPECT_FALSE(IsValidName("_"));
  EXPECT_TRUE(IsValidName("__"));
  EXPECT_FALSE(IsValidName("-a"));
  EXPECT_FALSE(IsValidName("a-"));
  EXPECT_FALSE(IsValidName("a*"));
}

TEST(IdentityVectors, ValidPattern) {
  int run = 0;
  for (const auto& v : VectorGroup("valid_pattern")) {
    SCOPED_TRACE(v.at("id").get<std::string>());
    EXPECT_EQ(IsValidPattern(v.at("input").at("pattern").get<std::string>()),
              v.at("expected").at("valid").get<bool>());
    ++run;
  }
  EXPECT_GT(run, 0);
  EXPECT_TRUE(IsValidPattern(std::string(79, 'a') + "*"));
  EXPECT_FALSE(IsValidPattern(std::string(80, 'a') + "*"));
  EXPECT_FALSE(IsValidPattern("a**"));
}

// ---- policies ---------------------------------------------------------------------

Policy PolicyOf(const Json& j) {
  return Policy{j.at("allow").get<std::vector<std::string>>(),
                j.at("deny").get<std::vector<std::string>>()};
}

TEST(IdentityVectors, PolicyVerify) {
  int run = 0;
  for (const auto& v : VectorGroup("policy_verify")) {
    SCOPED_TRACE(v.at("id").get<std::string>());
    const Policy p = PolicyOf(v.at("input"));
    for (const auto& [path, allowed] : v.at("expected").at("requests").items()) {
      SCOPED_TRACE(path);
      const Status s = p.Verify(path);
      if (allowed.get<bool>()) {
        EXPECT_TRUE(s.ok());
      } else {
        EXPECT_EQ(s, Status::NotAllowed());
      }
    }
    ++run;
  }
  EXPECT_GT(run, 0);
}

TEST(IdentityVectors, PolicyIsSubset) {
  int run = 0;
  for (const auto& v : VectorGroup("policy_is_subset")) {
    SCOPED_TRACE(v.at("id").get<std::string>());
    const Policy a = PolicyOf(v.at("input").at("A"));
    const Policy b = PolicyOf(v.at("input").at("B"));
    EXPECT_EQ(a.IsSubset(b), v.at("expected").at("A_is_subset_of_B").get<bool>());
    ++run;
  }
  EXPECT_GT(run, 0);
}

TEST(PolicyTest, PatternRules) {
  EXPECT_FALSE(PatternMatches("", ""));
  EXPECT_FALSE(PatternMatches("", "/v1/status"));
  EXPECT_TRUE(PatternMatches("*", "/anything"));
  EXPECT_TRUE(PatternMatches("/v1/key/create/my*", "/v1/key/create/my/other"));
  EXPECT_TRUE(PatternMatches("/v1/key/list/*", "/v1/key/list/"));
  EXPECT_FALSE(PatternMatches("/v1/key/list/*", "/v1/key/list"));
  EXPECT_TRUE(PatternMatches("/v1/*/x", "/v1/*/x"));  // inner '*' is literal
  EXPECT_FALSE(PatternMatches("/v1/*/x", "/v1/a/x"));
  EXPECT_FALSE(PatternMatches("/v1/key/?", "/v1/key/a"));
  EXPECT_FALSE(PatternMatches("/v1/status", "/v1/status/"));
  EXPECT_FALSE(Policy{}.Verify("/v1/status").ok());
}

// ---- PEM loading ------------------------------------------------------------------

TEST(IdentityVectors, TlsPemLoading) {
  const Json& group = VectorGroup("tls_pem_loading");
  TempDir dir;
  // Every vector names its file relative to a test data folder; recreate it.
  for (const auto& v : group) {
    const auto& in = v.at("input");
    if (!in.contains("file_text")) continue;
    const std::string rel =
        in.contains("file") ? in.at("file").get<std::string>() : in.at("path").get<std::string>();
    dir.Write(rel, in.at("file_text").get<std::string>());
  }
  int run = 0;
  for (const auto& v : group) {
    const std::string id = v.at("id").get<std::string>();
    SCOPED_TRACE(id);
    const auto& in = v.at("input");
    const bool should_fail = v.at("expected").at("should_fail").get<bool>();
    Status s;
    if (id.rfind("tls-read-private-key-", 0) == 0) {
      auto key = LoadPrivateKeyFile(dir.Path(in.at("file").get<std::string>()),
                                    in.at("password").get<std::string>());
      s = key.status();
    } else if (id.rfind("tls-read-certificate-", 0) == 0) {
      s = LoadCertificateFile(dir.Path(in.at("file").get<std::string>())).status();
    } else if (id.rfind("tls-load-cert-pool-", 0) == 0 ||
               id.rfind("tls-cert-pool-from-file-", 0) == 0) {
      const std::string rel =
          in.contains("path") ? in.at("path").get<std::string>() : in.at("file").get<std::string>();
      if (in.contains("directory_files")) {
        for (const auto& f : in.at("directory_files")) {
          ASSERT_TRUE(fs::exists(dir.Path(rel + f.get<std::string>()))) << f;
        }
      }
      s = LoadCertificateAuthorities(dir.Path(rel)).status();
    } else {
      ADD_FAILURE() << "unknown tls vector " << id;
      continue;
    }
    EXPECT_EQ(!s.ok(), should_fail) << s.message();
    ++run;
  }
  EXPECT_GT(run, 0);
}

const Json& PemVector(const std::string& id) {
  for (const auto& v : VectorGroup("tls_pem_loading")) {
    if (v.at("id") == id) return v;
  }
  throw std::runtime_error("missing vector " + id);
}

TEST(PemTest, EncryptedKeyErrors) {
  const std::string text =
      PemVector("tls-read-private-key-2").at("input").at("file_text").get<std::string>();
  EXPECT_TRUE(IsEncryptedPrivateKeyPem(text));
  auto none = ParsePrivateKeyPem(text, "");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().message(), "https: private key is encrypted: password required");
  auto wrong = ParsePrivateKeyPem(text, "incorrect_password");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().message(), "x509: decryption password incorrect");
  auto right = ParsePrivateKeyPem(text, "correct_password");
  ASSERT_TRUE(right.ok());
  EXPECT_EQ(EVP_PKEY_get_id(right->get()), EVP_PKEY_EC);
  const std::string plain =
      PemVector("tls-read-private-key-0").at("input").at("file_text").get<std::string>();
  EXPECT_FALSE(IsEncryptedPrivateKeyPem(plain));
}

TEST(PemTest, CertificateFileErrors) {
  auto empty = ParseCertificatesPem("  \n ");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().message(), "https: no valid PEM data");
  auto garbage = ParseCertificatesPem("hello world");
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.status().message(), "https: no valid PEM data");
  const std::string with_key =
      PemVector("tls-read-certificate-2").at("input").at("file_text").get<std::string>();
  auto mixed = ParseCertificatesPem(with_key);
  ASSERT_FALSE(mixed.ok());
  EXPECT_EQ(mixed.status().message(), "https: unsupported PEM data block");
  auto truncated = ParseCertificatesPem("-----BEGIN CERTIFICATE-----\nMIIB\n");
  ASSERT_FALSE(truncated.ok());
  EXPECT_EQ(truncated.status().message(), "https: no valid PEM data");
  auto bad_b64 =
      ParseCertificatesPem("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n");
  EXPECT_FALSE(bad_b64.ok());
  auto bad_der =
      ParseCertificatesPem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
  EXPECT_FALSE(bad_der.ok());
  auto missing = LoadCertificateFile("/nonexistent/kes/cert.pem");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(),
            "open /nonexistent/kes/cert.pem: no such file or directory");
}

TEST(PemTest, KeyFileSkipsCertificatesAndRejectsGarbage) {
  auto api = APIKey::Generate();
  ASSERT_TRUE(api.ok());
  auto cert = api->GenerateCertificate();
  ASSERT_TRUE(cert.ok());
  auto cert_pem = CertificateToPem(cert->get());
  auto key_pem = PrivateKeyToPem(api->private_key());
  ASSERT_TRUE(cert_pem.ok() && key_pem.ok());
  // Certificate first, then the key: the key is found.
  auto key = ParsePrivateKeyPem(*cert_pem + *key_pem, "ignored");
  ASSERT_TRUE(key.ok()) << key.status().message();
  EXPECT_TRUE(CheckKeyMatchesCertificate(key->get(), cert->get()).ok());
  // Both orders of a combined file load as a key file, never as a certificate file.
  EXPECT_FALSE(ParseCertificatesPem(*key_pem + *cert_pem).ok());
  auto only_cert = ParsePrivateKeyPem(*cert_pem, "");
  ASSERT_FALSE(only_cert.ok());
  EXPECT_EQ(only_cert.status().message(), "no PEM-encoded private key found");
  EXPECT_FALSE(ParsePrivateKeyPem("garbage", "").ok());
  EXPECT_FALSE(
      ParsePrivateKeyPem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "")
          .ok());
  // A malformed block is skipped like Go's pem.Decode does.
  const std::string owned = "-----BEGIN X-----\n!!\n-----END X-----\n" + *key_pem;
  std::string_view rest = owned;
  auto block = DecodePemBlock(&rest);
  ASSERT_TRUE(block.has_value());
  EXPECT_EQ(block->type, "PRIVATE KEY");
}

TEST(PemTest, Pkcs8EncryptedKeyNeedsPassword) {
  if (!HaveOpenSslCli()) GTEST_SKIP() << "openssl CLI not available";
  const std::string pem = RunShell(
      "openssl genpkey -algorithm ed25519 2>/dev/null | openssl pkcs8 -topk8 -v2 aes-256-cbc "
      "-passout pass:secret 2>/dev/null");
  ASSERT_NE(pem.find("ENCRYPTED PRIVATE KEY"), std::string::npos);
  EXPECT_TRUE(IsEncryptedPrivateKeyPem(pem));
  auto none = ParsePrivateKeyPem(pem, "");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().message(), "https: private key is encrypted: password required");
  EXPECT_FALSE(ParsePrivateKeyPem(pem, "wrong").ok());
  auto key = ParsePrivateKeyPem(pem, "secret");
  ASSERT_TRUE(key.ok()) << key.status().message();
  EXPECT_EQ(EVP_PKEY_get_id(key->get()), EVP_PKEY_ED25519);
}

TEST(PemTest, RsaAndEcKeysInEveryEncoding) {
  if (!HaveOpenSslCli()) GTEST_SKIP() << "openssl CLI not available";
  const std::vector<std::string> cmds = {
      "openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:1024 2>/dev/null",
      "openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:1024 2>/dev/null | openssl rsa "
      "-traditional 2>/dev/null",
      "openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null",
      "openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-384 2>/dev/null",
  };
  for (const auto& cmd : cmds) {
    SCOPED_TRACE(cmd);
    const std::string pem = RunShell(cmd);
    ASSERT_NE(pem.find("PRIVATE KEY"), std::string::npos);
    EXPECT_TRUE(ParsePrivateKeyPem(pem, "").ok());
  }
}

TEST(PemTest, CaDirectorySkipsSubdirectories) {
  TempDir dir;
  const std::string cert =
      PemVector("tls-read-certificate-0").at("input").at("file_text").get<std::string>();
  dir.Write("ca/a.pem", cert);
  dir.Write("ca/b.pem", cert + cert);
  fs::create_directories(dir.Path("ca/sub"));
  auto certs = LoadCertificateAuthorities(dir.Path("ca"));
  ASSERT_TRUE(certs.ok()) << certs.status().message();
  EXPECT_EQ(certs->size(), 3u);
  dir.Write("ca/readme.txt", "not a certificate");
  EXPECT_FALSE(LoadCertificateAuthorities(dir.Path("ca")).ok());
  EXPECT_FALSE(LoadCertificateAuthorities(dir.Path("missing")).ok());
}

// ---- certificates made by kes ---------------------------------------------------------

TEST(CertificateTest, NewIdentityFilesMatchOpenSsl) {
  NewIdentityOptions opts;
  opts.subject = "MyApp";
  opts.dns_names = {"localhost", "kes.example"};
  opts.ip_addresses = {"127.0.0.1", "::1"};
  auto created = CreateNewIdentity(opts);
  ASSERT_TRUE(created.ok()) << created.status().message();
  X509* c = created->certificate.get();
  EXPECT_EQ(created->identity, created->api_key.Identity());

  char cn[128] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(c), NID_commonName, cn, sizeof cn);
  EXPECT_EQ(std::string(cn), "MyApp");
  EXPECT_EQ(X509_NAME_entry_count(X509_get_subject_name(c)), 1);
  EXPECT_EQ(X509_get_extended_key_usage(c), static_cast<uint32_t>(XKU_SSL_CLIENT | XKU_SSL_SERVER));
  EXPECT_EQ(X509_get_key_usage(c), static_cast<uint32_t>(KU_DIGITAL_SIGNATURE));
  EXPECT_FALSE(IsCA(c));
  EXPECT_EQ(X509_check_host(c, "kes.example", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(c, "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(c, "::1", 0), 1);
  int days = 0, secs = 0;
  ASSERT_EQ(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(c), X509_get0_notAfter(c)), 1);
  EXPECT_EQ(days, 30);  // default 720h
  EXPECT_LE(secs, 1);

  TempDir dir;
  const std::string key_path = dir.Path("client.key"), cert_path = dir.Path("client.crt");
  auto key_pem = PrivateKeyToPem(created->api_key.private_key());
  auto cert_pem = CertificateToPem(c);
  ASSERT_TRUE(key_pem.ok() && cert_pem.ok());
  ASSERT_TRUE(WriteIdentityFiles(key_path, *key_pem, cert_path, *cert_pem, false).ok());
  struct stat st {};
  ASSERT_EQ(stat(key_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat(cert_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);

  // Reloaded, the files give back the same identity and API key.
  auto id = IdentityOfPemFile(cert_path);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, created->identity);
  auto key = LoadPrivateKeyFile(key_path, "");
  ASSERT_TRUE(key.ok());
  auto api = APIKey::FromPrivateKey(key->get());
  ASSERT_TRUE(api.ok());
  EXPECT_EQ(api->String(), created->api_key.String());

  if (HaveOpenSslCli()) {
    const std::string out =
        RunShell("openssl x509 -in '" + cert_path +
                 "' -pubkey -noout | openssl pkey -pubin -outform DER | sha256sum");
    EXPECT_EQ(out.substr(0, 64), created->identity);
    // OpenSSL reads the key file, and it belongs to the certificate.
    const std::string pub_from_key =
        RunShell("openssl pkey -in '" + key_path + "' -pubout -outform DER | sha256sum");
    EXPECT_EQ(pub_from_key.substr(0, 64), created->identity);
  }

  // No overwrite without force; exact upstream messages.
  Status again = WriteIdentityFiles(key_path, *key_pem, cert_path, *cert_pem, false);
  EXPECT_EQ(again.message(), "private key already exists. Use --force to overwrite it");
  fs::remove(key_path);
  again = WriteIdentityFiles(key_path, *key_pem, cert_path, *cert_pem, false);
  EXPECT_EQ(again.message(), "certificate already exists. Use --force to overwrite it");
  EXPECT_FALSE(fs::exists(key_path));  // nothing written
  // Force overwrites and keeps an existing file's mode.
  ASSERT_EQ(chmod(cert_path.c_str(), 0640), 0);
  EXPECT_TRUE(WriteIdentityFiles(key_path, *key_pem, cert_path, *cert_pem, true).ok());
  ASSERT_EQ(stat(cert_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  // A failing certificate write removes the new key file.
  const std::string key2 = dir.Path("k2.key");
  Status bad = WriteIdentityFiles(key2, *key_pem, dir.Path("missing/dir/c.crt"), *cert_pem, false);
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.message().rfind("failed to create certificate: ", 0), 0u) << bad.message();
  EXPECT_FALSE(fs::exists(key2));
}

TEST(CertificateTest, DefaultSubjectIsIdentityAndExpiryIsHonoured) {
  NewIdentityOptions opts;
  opts.expiry = std::chrono::hours(48);
  auto created = CreateNewIdentity(opts);
  ASSERT_TRUE(created.ok());
  char cn[128] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(created->certificate.get()), NID_commonName, cn,
                            sizeof cn);
  EXPECT_EQ(std::string(cn), created->identity);
  int days = 0, secs = 0;
  ASSERT_EQ(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(created->certificate.get()),
                           X509_get0_notAfter(created->certificate.get())),
            1);
  EXPECT_EQ(days, 2);
  EXPECT_EQ(X509_get_ext_by_NID(created->certificate.get(), NID_subject_alt_name, -1), -1);
}

TEST(CertificateTest, InvalidIpIsRejected) {
  NewIdentityOptions opts;
  opts.ip_addresses = {"300.1.1.1"};
  auto created = CreateNewIdentity(opts);
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.status().message(), "invalid string being converted to IP address: 300.1.1.1");
  EXPECT_FALSE(ParseIpAddress("localhost").has_value());
  EXPECT_EQ(ParseIpAddress("10.0.0.5")->size(), 4u);
  EXPECT_EQ(ParseIpAddress("fe80::1")->size(), 16u);
}

TEST(CertificateTest, EncryptedKeyFileIsLegacyPemAndNeedsThePassword) {
  auto api = APIKey::Generate();
  ASSERT_TRUE(api.ok());
  auto pem = PrivateKeyToPem(api->private_key(), "s3cret");
  ASSERT_TRUE(pem.ok());
  EXPECT_EQ(
      pem->rfind("-----BEGIN PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,", 0),
      0u)
      << *pem;
  EXPECT_TRUE(IsEncryptedPrivateKeyPem(*pem));
  auto none = ParsePrivateKeyPem(*pem, "");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().message(), "https: private key is encrypted: password required");
  auto wrong = ParsePrivateKeyPem(*pem, "wrong");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().message(), "x509: decryption password incorrect");
  auto right = ParsePrivateKeyPem(*pem, "s3cret");
  ASSERT_TRUE(right.ok());
  auto back = APIKey::FromPrivateKey(right->get());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->String(), api->String());
  if (HaveOpenSslCli()) {
    TempDir dir;
    dir.Write("k.pem", *pem);
    // OpenSSL's own legacy-PEM reader agrees on the format.
    const std::string out =
        RunShell("openssl pkey -in '" + dir.Path("k.pem") +
                 "' -passin pass:s3cret -pubout -outform DER 2>/dev/null | sha256sum");
    EXPECT_EQ(out.substr(0, 64), api->Identity());
  }
}

TEST(CertificateTest, ReadIdentityFileWalksBlocks) {
  TempDir dir;
  const Json* v0 = nullptr;
  for (const auto& v : VectorGroup("certificate_identity")) {
    if (v.at("input").contains("private_key_pem")) v0 = &v;
  }
  ASSERT_NE(v0, nullptr);
  const std::string cert = v0->at("input").at("certificate_pem").get<std::string>();
  const std::string key = v0->at("input").at("private_key_pem").get<std::string>();
  const std::string want = v0->at("expected").at("identity").get<std::string>();

  dir.Write("cert.pem", "\n" + cert + "\n");
  auto from_cert = ReadIdentityFile(dir.Path("cert.pem"));
  ASSERT_TRUE(from_cert.ok()) << from_cert.status().message();
  EXPECT_EQ(from_cert->identity, want);
  EXPECT_FALSE(from_cert->api_key.has_value());

  dir.Write("key.pem", key + "\n" + cert);
  auto from_key = ReadIdentityFile(dir.Path("key.pem"));
  ASSERT_TRUE(from_key.ok()) << from_key.status().message();
  ASSERT_TRUE(from_key->api_key.has_value());
  EXPECT_EQ(from_key->api_key->String(),
            v0->at("derived").at("api_key_of_private_key").get<std::string>());
  EXPECT_EQ(from_key->identity, want);

  auto ec = GenerateEcdsaP256Key();
  ASSERT_TRUE(ec.ok());
  auto ec_pem = PrivateKeyToPem(ec->get());
  ASSERT_TRUE(ec_pem.ok());
  dir.Write("ec.pem", *ec_pem);
  auto unsupported = ReadIdentityFile(dir.Path("ec.pem"));
  ASSERT_FALSE(unsupported.ok());
  EXPECT_EQ(unsupported.status().message(),
            "'" + dir.Path("ec.pem") +
                "' contains unsupported private key. Only ed25519 private keys are supported");

  dir.Write("junk.txt", "no pem here");
  auto junk = ReadIdentityFile(dir.Path("junk.txt"));
  ASSERT_FALSE(junk.ok());
  EXPECT_EQ(junk.status().message(),
            "'" + dir.Path("junk.txt") + "' contains no valid PEM certificate or private key");
  auto missing = ReadIdentityFile(dir.Path("nope"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(), "open " + dir.Path("nope") + ": no such file or directory");
}

TEST(CertificateTest, DevServerCertificate) {
  auto dev = GenerateDevServerCertificate({"127.0.0.1", "10.0.0.5"});
  ASSERT_TRUE(dev.ok()) << dev.status().message();
  X509* c = dev->certificate.get();
  EXPECT_EQ(EVP_PKEY_get_id(dev->key.get()), EVP_PKEY_EC);
  char cn[64] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(c), NID_commonName, cn, sizeof cn);
  EXPECT_EQ(std::string(cn), "localhost");
  EXPECT_EQ(X509_get_extended_key_usage(c), static_cast<uint32_t>(XKU_SSL_SERVER));
  EXPECT_EQ(X509_check_ip_asc(c, "10.0.0.5", 0), 1);
  EXPECT_NE(X509_check_host(c, "localhost", 0, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, nullptr),
            1);  // no DNS SAN
  EXPECT_TRUE(CheckKeyMatchesCertificate(dev->key.get(), c).ok());
  EXPECT_EQ(X509_verify(c, dev->key.get()), 1);
  int days = 0, secs = 0;
  ASSERT_EQ(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(c), X509_get0_notAfter(c)), 1);
  EXPECT_EQ(days, 90);
}

}  // namespace
}  // namespace kes::identity
