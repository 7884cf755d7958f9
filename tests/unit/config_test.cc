// Config file loading (spec config.md): upstream example files, every
// validation message, ${VAR} expansion, Go durations, log levels, type and
// duplicate-key errors.
#include "config/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "keystore/aws/config.h"
#include "keystore/fs/config.h"
#include "keystore/vault/config.h"
#include "vectors.h"

namespace kes::config {
namespace {

namespace stdfs = std::filesystem;
using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::nanoseconds;
using std::chrono::seconds;

// The backend config of the keystore section, as type T.
template <typename T>
const T& KeyStoreAs(const KeyStoreConfig& c) {
  const auto* p = dynamic_cast<const T*>(c.get());
  if (p == nullptr) throw std::runtime_error("unexpected keystore kind " + std::string(c->Kind()));
  return *p;
}

std::string Example(const std::string& name) {
  return kes::testing::SpecDir() + "/examples/" + name;
}

// A minimal valid file; tests append or replace sections.
constexpr const char* kHead =
    "admin:\n"
    "  identity: c84cc9b91ae2399b043da7eca616048d4b4200edf2ff418d8af3835911db945d\n"
    "tls:\n"
    "  key: ./server.key\n"
    "  cert: ./server.cert\n";
constexpr const char* kFs = "keystore:\n  fs:\n    path: /tmp/keys\n";

std::string Valid(const std::string& extra = "") { return std::string(kHead) + extra + kFs; }

std::string ErrorOf(std::string_view yaml) {
  auto r = LoadConfigText(yaml);
  if (r.ok()) return "<ok>";
  return r.status().message();
}

// Sets an environment variable for one test.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { ::setenv(name, value, 1); }
  ~ScopedEnv() { ::unsetenv(name_); }

 private:
  const char* name_;
};

// Runs a test body with another working directory.
class ScopedCwd {
 public:
  explicit ScopedCwd(const stdfs::path& dir) : old_(stdfs::current_path()) {
    stdfs::current_path(dir);
  }
  ~ScopedCwd() { stdfs::current_path(old_); }

 private:
  stdfs::path old_;
};

stdfs::path TempDir() {
  std::string tmpl = (stdfs::temp_directory_path() / "kes-config-test-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

// ---- upstream example files --------------------------------------------------

TEST(ConfigExamples, FsYml) {
  auto c = LoadConfigFile(Example("fs.yml"));
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->address, "0.0.0.0:7373");
  EXPECT_EQ(c->admin_identity, "c84cc9b91ae2399b043da7eca616048d4b4200edf2ff418d8af3835911db945d");
  EXPECT_EQ(c->tls.key_file, "./server.key");
  EXPECT_EQ(c->tls.cert_file, "./server.cert");
  EXPECT_EQ(c->tls.auth, TlsAuth::kOff);
  EXPECT_EQ(KeyStoreAs<keystore::fs::Config>(c->keystore).path, "/tmp/keys");
  EXPECT_EQ(c->keystore->Kind(), "fs");
  EXPECT_TRUE(c->warnings.empty());
  EXPECT_EQ(c->log.error, kLevelInfo);
  EXPECT_EQ(c->log.audit, kLevelInfo);
  EXPECT_TRUE(c->log.audit_enabled());  // audit to stdout is on by default
}

TEST(ConfigExamples, CustomApiYml) {
  auto c = LoadConfigFile(Example("custom-api.yml"));
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->admin_identity, "disabled");
  EXPECT_EQ(c->cache.any, minutes(5));
  EXPECT_EQ(c->cache.unused, seconds(30));
  EXPECT_EQ(c->cache.offline, nanoseconds(0));
  ASSERT_EQ(c->api.size(), 2u);
  EXPECT_EQ(c->api.at("/v1/status").timeout, seconds(17));
  EXPECT_TRUE(c->api.at("/v1/status").skip_auth);
  EXPECT_EQ(c->api.at("/v1/metrics").timeout, seconds(22));
  EXPECT_TRUE(c->api.at("/v1/metrics").skip_auth);
  EXPECT_TRUE(c->any_skip_auth());
  EXPECT_EQ(KeyStoreAs<keystore::fs::Config>(c->keystore).path, "/tmp/kes");
}

TEST(ConfigExamples, AwsYml) {
  auto c = LoadConfigFile(Example("aws.yml"));
  ASSERT_TRUE(c.ok()) << c.status().message();
  const auto& aws = KeyStoreAs<keystore::aws::Config>(c->keystore).options;
  EXPECT_EQ(aws.endpoint, "secretsmanager.us-east-2.amazonaws.com");
  EXPECT_EQ(aws.region, "us-east-2");
  EXPECT_EQ(aws.access_key, "AKIAIOSFODNN7EXAMPLE");
  EXPECT_EQ(aws.secret_key, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
  EXPECT_EQ(aws.session_token, "");
  EXPECT_EQ(aws.kms_key, "");
  EXPECT_EQ(c->keystore->Kind(), "aws.secretsmanager");
}

TEST(ConfigExamples, AwsNoCredentialsYml) {
  auto c = LoadConfigFile(Example("aws-no-credentials.yml"));
  ASSERT_TRUE(c.ok()) << c.status().message();
  const auto& aws = KeyStoreAs<keystore::aws::Config>(c->keystore).options;
  EXPECT_EQ(aws.region, "us-east-2");
  EXPECT_TRUE(aws.access_key.empty() && aws.secret_key.empty() && aws.session_token.empty());
}

TEST(ConfigExamples, VaultYml) {
  for (const char* name : {"vault.yml", "vault-approle.yml"}) {
    auto c = LoadConfigFile(Example(name));
    ASSERT_TRUE(c.ok()) << name << ": " << c.status().message();
    const auto& v = KeyStoreAs<keystore::vault::Config>(c->keystore);
    EXPECT_EQ(v.endpoint, "https://127.0.0.1:8200");
    EXPECT_EQ(v.engine, "kv");
    EXPECT_EQ(v.engine_version, "v2");
    EXPECT_EQ(v.namespace_, "ns1");
    EXPECT_EQ(v.prefix, "tenant-1");
    EXPECT_TRUE(v.has_approle);
    EXPECT_EQ(v.approle_id, "db02de05-fa39-4855-059b-67221c5c2f63");
    EXPECT_EQ(v.approle_secret, "6a174c20-f6de-a53c-74d2-6018fcceff64");
    EXPECT_EQ(v.status_ping, seconds(15));  // upstream's real default, not the documented 10s
  }
}

TEST(ConfigExamples, VaultK8sYml) {
  auto c = LoadConfigFile(Example("vault-k8s.yml"));
  ASSERT_TRUE(c.ok()) << c.status().message();
  const auto& v = KeyStoreAs<keystore::vault::Config>(c->keystore);
  EXPECT_EQ(v.engine, "secrets");
  EXPECT_EQ(v.engine_version, "v1");
  EXPECT_EQ(v.namespace_, "ns2");
  EXPECT_EQ(v.prefix, "tenant-2");
  EXPECT_TRUE(v.has_kubernetes);
  EXPECT_EQ(v.kubernetes_role, "default");
  EXPECT_TRUE(v.kubernetes_jwt.starts_with("eyJhbGciOiJSUzI1NiIs"));
  EXPECT_TRUE(v.kubernetes_jwt_file.empty());
}

TEST(ConfigExamples, VaultK8sServiceAccountFileResolvesAgainstWorkingDirectory) {
  const std::string file = Example("vault-k8s-with-service-account-file.yml");
  const stdfs::path dir = TempDir();
  {
    ScopedCwd cwd(dir);
    EXPECT_EQ(ErrorOf([&] {
                std::ifstream in(file);
                return std::string(std::istreambuf_iterator<char>(in), {});
              }()),
              "kesconf: failed to read vault kubernetes JWT from "
              "'./testdata/vault-k8s-service-account': open ./testdata/vault-k8s-service-account: "
              "no such file or directory");
  }
  stdfs::create_directory(dir / "testdata");
  stdfs::copy_file(Example("vault-k8s-service-account"),
                   dir / "testdata/vault-k8s-service-account");
  {
    ScopedCwd cwd(dir);
    auto c = LoadConfigFile(file);
    ASSERT_TRUE(c.ok()) << c.status().message();
    const auto& v = KeyStoreAs<keystore::vault::Config>(c->keystore);
    EXPECT_EQ(v.kubernetes_jwt_file, "./testdata/vault-k8s-service-account");
    EXPECT_TRUE(v.kubernetes_jwt.starts_with("eyJhbGciOiJSUzI1NiIs"));
  }
  stdfs::remove_all(dir);
}

TEST(ConfigExamples, ServerConfigYamlFailsOnEmptyFsPath) {
  auto c = LoadConfigFile(Example("server-config.yaml"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), "kesconf: invalid fs keystore: no path specified");
}

TEST(ConfigExamples, ServerConfigYamlWithOnlyFsKeystoreLoads) {
  std::ifstream in(Example("server-config.yaml"));
  std::string text(std::istreambuf_iterator<char>(in), {});
  // Keep everything before the keystore section, then one backend.
  text = text.substr(0, text.find("\nkeystore:")) + "\nkeystore:\n  fs:\n    path: /tmp/x\n";
  auto c = LoadConfigText(text);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->policies.size(), 2u);
  EXPECT_EQ(c->policies.at("my-app").allow.size(), 3u);
  EXPECT_EQ(c->policies.at("my-app").deny.size(), 2u);
  EXPECT_EQ(c->policies.at("my-app").identities.size(), 2u);
  EXPECT_EQ(c->policies.at("my-app-ops").identities.at(0),
            "7ec8095a5308a535b72b35c7ccd4ce1d7c14af713acd22e2935a9d6e4fe18127");
  EXPECT_EQ(c->tls.proxy_header_cert, "X-Tls-Client-Cert");
  EXPECT_EQ(c->cache.unused, seconds(20));
  EXPECT_EQ(c->log.error, kLevelInfo);  // "on"
  EXPECT_EQ(c->log.audit, kLevelOff);   // "off"
  EXPECT_FALSE(c->log.audit_enabled());
  EXPECT_EQ(c->keys, (std::vector<std::string>{"some-key-name", "another-key-name"}));
  EXPECT_EQ(c->api.at("/v1/ready").timeout, seconds(15));
  EXPECT_FALSE(c->any_skip_auth());
}

TEST(ConfigFile, OpenErrorIsGoStyle) {
  EXPECT_EQ(LoadConfigFile("/nonexistent-kes-dir/config.yml").status().message(),
            "open /nonexistent-kes-dir/config.yml: no such file or directory");
  EXPECT_EQ(LoadConfigFile("").status().message(), "open : no such file or directory");
  const stdfs::path dir = TempDir();
  EXPECT_EQ(LoadConfigFile(dir.string()).status().message(),
            "read " + dir.string() + ": is a directory");
  stdfs::remove(dir);
}

TEST(ConfigFile, EmptyFileIsEof) {
  EXPECT_EQ(ErrorOf(""), "EOF");
  EXPECT_EQ(ErrorOf("# only a comment\n"), "EOF");
}

TEST(ConfigFile, SyntaxErrorNamesLine) {
  const std::string e = ErrorOf("admin:\n  identity: x\ntls: [a\n");
  EXPECT_TRUE(e.starts_with("yaml: line ")) << e;
}

// ---- version pre-check ----------------------------------------------------------

TEST(ConfigVersion, Rules) {
  EXPECT_EQ(ErrorOf("version: v1\n" + Valid()), "<ok>");
  EXPECT_EQ(ErrorOf("version: \"v1\"\n" + Valid()), "<ok>");
  EXPECT_EQ(ErrorOf(Valid()), "<ok>");  // absent is fine
  EXPECT_EQ(ErrorOf("version: v2\n" + Valid()), "edge: invalid server config version 'v2'");
  EXPECT_EQ(ErrorOf("version: 1\n" + Valid()), "edge: invalid server config version '1'");
  {
    ScopedEnv env("KES_TEST_VERSION", "v1");  // never expanded
    EXPECT_EQ(ErrorOf("version: ${KES_TEST_VERSION}\n" + Valid()),
              "edge: invalid server config version '${KES_TEST_VERSION}'");
  }
  EXPECT_EQ(ErrorOf(Valid() + "version:\n  a: b\n"), "kesconf: invalid config version at line '9'");
  EXPECT_EQ(ErrorOf("version: [v1]\n" + Valid()), "kesconf: invalid config version at line '1'");
}

// ---- validation messages, in upstream order ---------------------------------------

TEST(ConfigValidation, EveryMessage) {
  const std::string id = "c84cc9b91ae2399b043da7eca616048d4b4200edf2ff418d8af3835911db945d";
  struct Case {
    std::string yaml;
    std::string error;
  };
  const std::vector<Case> cases = {
      {std::string("tls:\n  key: k\n  cert: c\n") + kFs,
       "kesconf: invalid admin identity: no admin identity"},
      {std::string("root: disabled\ntls:\n  key: k\n  cert: c\n") + kFs,
       "kesconf: invalid admin identity: no admin identity"},
      {"admin:\n  identity: x\ntls:\n  cert: c\n" + std::string(kFs),
       "kesconf: invalid tls config: no private key"},
      {"admin:\n  identity: x\ntls:\n  key: k\n" + std::string(kFs),
       "kesconf: invalid tls config: no certificate"},
      {"admin:\n  identity: x\n" + std::string(kFs), "kesconf: invalid tls config: no private key"},
      {"admin:\n  identity: x\ntls:\n  key: k\n  cert: c\n  auth: maybe\n" + std::string(kFs),
       "kesconf: invalid tls config: invalid auth 'maybe'"},
      {"admin:\n  identity: x\ntls:\n  key: k\n  cert: c\n  proxy:\n    identities: [y, x]\n" +
           std::string(kFs),
       "kesconf: invalid tls proxy: identity 'x' is already admin"},
      {Valid("policy:\n  p1:\n    allow: [/v1/*]\n    identities: [" + id + "]\n"),
       "kesconf: invalid policy 'p1': identity '" + id + "' is already admin"},
      {"admin:\n  identity: x\ntls:\n  key: k\n  cert: c\n  proxy:\n    identities: [y]\n"
       "policy:\n  p:\n    identities: [z, y]\n" +
           std::string(kFs),
       "kesconf: invalid policy 'p': identity 'y' is already a TLS proxy"},
      {Valid("cache:\n  expiry:\n    any: -5m\n"), "kesconf: invalid cache expiry '-5m0s'"},
      {Valid("cache:\n  expiry:\n    unused: -1s\n"), "kesconf: invalid cache unused expiry '-1s'"},
      {Valid("cache:\n  expiry:\n    offline: -1.5h\n"),
       "kesconf: invalid offline cache expiry '-1h30m0s'"},
      {Valid("log:\n  error: loud\n"), "strconv.Atoi: parsing \"LOUD\": invalid syntax"},
      {Valid("log:\n  audit: debug-2\n"), "kesconf: invalid log level 'DEBUG-2'"},
      {Valid("log:\n  error: info+x\n"),
       "kesconf: invalid log level suffix 'X': strconv.Atoi: parsing \"X\": invalid syntax"},
      {Valid("api:\n  /v1/status:\n    timeout: -1s\n"),
       "kesconf: invalid timeout '-1000000000' for API '/v1/status'"},
      {Valid("keys:\n  - name: a\n  - name: b\n  - name: a\n"),
       "kesconf: invalid key config: key 'a' is defined multiple times"},
      {kHead, "kesconf: no keystore specified"},
      {std::string(kHead) + "keystore:\n  aws:\n", "kesconf: no keystore specified"},
      {std::string(kHead) + "keystore:\n  kes:\n    endpoint: [https://127.0.0.1:7373]\n",
       "kesconf: no keystore specified"},
      {std::string(kHead) + "keystore:\n  fs:\n    path: \"\"\n",
       "kesconf: invalid fs keystore: no path specified"},
      {std::string(kHead) +
           "keystore:\n  fs:\n    path: /a\n  aws:\n    secretsmanager:\n      endpoint: e\n",
       "kesconf: invalid keystore config: more than once keystore specified"},
      {std::string(kHead) + "keystore:\n  vault:\n    engine: kv\n",
       "kesconf: invalid vault keystore: no endpoint specified"},
      {std::string(kHead) + "keystore:\n  vault:\n    endpoint: e\n",
       "kesconf: invalid vault keystore: no authentication method specified"},
      {std::string(kHead) +
           "keystore:\n  vault:\n    endpoint: e\n    approle:\n      id: i\n    kubernetes:\n"
           "      jwt: j\n",
       "kesconf: invalid vault keystore: more than one authentication method specified"},
      {std::string(kHead) + "keystore:\n  vault:\n    endpoint: e\n    approle:\n      secret: s\n",
       "kesconf: invalid vault keystore: invalid approle config: no approle ID specified"},
      {std::string(kHead) + "keystore:\n  vault:\n    endpoint: e\n    approle:\n      id: i\n",
       "kesconf: invalid vault keystore: invalid approle config: no approle secret specified"},
      {std::string(kHead) +
           "keystore:\n  vault:\n    endpoint: e\n    kubernetes:\n      role: r\n",
       "kesconf: invalid vault keystore: invalid kubernetes config: no JWT specified"},
      {std::string(kHead) +
           "keystore:\n  vault:\n    endpoint: e\n    kubernetes:\n      jwt: j\n    transit:\n"
           "      engine: t\n",
       "kesconf: invalid vault keystore: invalid transit config: no key name specified"},
      {std::string(kHead) +
           "keystore:\n  vault:\n    endpoint: e\n    kubernetes:\n      jwt: j\n    tls:\n"
           "      key: k\n",
       "kesconf: invalid vault keystore: invalid tls config: no TLS certificate provided"},
      {std::string(kHead) +
           "keystore:\n  vault:\n    endpoint: e\n    kubernetes:\n      jwt: j\n    tls:\n"
           "      cert: c\n",
       "kesconf: invalid vault keystore: invalid tls config: no TLS private key provided"},
      {std::string(kHead) + "keystore:\n  fortanix:\n    sdkms:\n      group_id: g\n",
       "kesconf: invalid fortanix SDKMS keystore: no endpoint specified"},
      {std::string(kHead) + "keystore:\n  fortanix:\n    sdkms:\n      endpoint: e\n",
       "kesconf: invalid fortanix SDKMS keystore: no API key specified"},
      {std::string(kHead) + "keystore:\n  gemalto:\n    keysecure:\n      credentials: {}\n",
       "kesconf: invalid gemalto keysecure keystore: no endpoint specified"},
      {std::string(kHead) + "keystore:\n  gemalto:\n    keysecure:\n      endpoint: e\n",
       "kesconf: invalid gemalto keysecure keystore: no token specified"},
      {std::string(kHead) + "keystore:\n  gcp:\n    secretmanager:\n      endpoint: e\n",
       "kesconf: invalid GCP secretmanager keystore: no project ID specified"},
      {std::string(kHead) + "keystore:\n  aws:\n    secretsmanager:\n      region: r\n",
       "kesconf: invalid AWS secretsmanager keystore: no endpoint specified"},
      {std::string(kHead) + "keystore:\n  aws:\n    secretsmanager:\n      endpoint: e\n",
       "kesconf: invalid AWS secretsmanager keystore: no region specified"},
      {std::string(kHead) + "keystore:\n  azure:\n    keyvault:\n      credentials: {}\n",
       "kesconf: invalid Azure keyvault keystore: no endpoint specified"},
      {std::string(kHead) +
           "keystore:\n  azure:\n    keyvault:\n      endpoint: e\n      credentials: {}\n"
           "      managed_identity: {}\n",
       "kesconf: invalid Azure keyvault keystore: more than one authentication method specified"},
      {std::string(kHead) +
           "keystore:\n  azure:\n    keyvault:\n      endpoint: e\n      credentials: {}\n",
       "kesconf: invalid Azure keyvault keystore: no tenant ID specified"},
      {std::string(kHead) +
           "keystore:\n  azure:\n    keyvault:\n      endpoint: e\n      credentials:\n"
           "        tenant_id: t\n",
       "kesconf: invalid Azure keyvault keystore: no client ID specified"},
      {std::string(kHead) +
           "keystore:\n  azure:\n    keyvault:\n      endpoint: e\n      credentials:\n"
           "        tenant_id: t\n        client_id: c\n",
       "kesconf: invalid Azure keyvault keystore: no client secret specified"},
      {std::string(kHead) +
           "keystore:\n  azure:\n    keyvault:\n      endpoint: e\n      managed_identity: {}\n",
       "kesconf: invalid Azure keyvault keystore: no client ID specified"},
      {std::string(kHead) + "keystore:\n  entrust:\n    keycontrol:\n      vault_id: v\n",
       "kesconf: invalid Entrust KeyControl keystore: no endpoint specified"},
      {std::string(kHead) + "keystore:\n  entrust:\n    keycontrol:\n      endpoint: e\n",
       "kesconf: invalid Entrust KeyControl keystore: no vault ID specified"},
      {std::string(kHead) +
           "keystore:\n  entrust:\n    keycontrol:\n      endpoint: e\n      vault_id: v\n",
       "kesconf: invalid Entrust KeyControl keystore: no box ID specified"},
      {std::string(kHead) +
           "keystore:\n  entrust:\n    keycontrol:\n      endpoint: e\n      vault_id: v\n"
           "      box_id: b\n",
       "kesconf: invalid Entrust KeyControl keystore: no username specified"},
      {std::string(kHead) +
           "keystore:\n  entrust:\n    keycontrol:\n      endpoint: e\n      vault_id: v\n"
           "      box_id: b\n      credentials:\n        username: u\n",
       "kesconf: invalid Entrust KeyControl keystore: no password specified"},
  };
  for (const Case& c : cases) EXPECT_EQ(ErrorOf(c.yaml), c.error) << c.yaml;
}

TEST(ConfigValidation, OrderAdminBeforeTlsBeforeCacheBeforeKeystore) {
  // Several faults at once: the first in upstream order wins.
  EXPECT_EQ(ErrorOf("tls:\n  auth: x\ncache:\n  expiry:\n    any: -1s\n"),
            "kesconf: invalid admin identity: no admin identity");
  EXPECT_EQ(ErrorOf("admin:\n  identity: a\ntls:\n  key: k\n  cert: c\ncache:\n  expiry:\n"
                    "    any: -1s\nlog:\n  error: bad\n"),
            "kesconf: invalid cache expiry '-1s'");
  EXPECT_EQ(ErrorOf(std::string(kHead) + "log:\n  error: bad\n  audit: worse\n"),
            "strconv.Atoi: parsing \"BAD\": invalid syntax");
  EXPECT_EQ(ErrorOf(std::string(kHead) +
                    "api:\n  /v1/status:\n    timeout: -2s\nkeys:\n  - name: a\n  - name: a\n"),
            "kesconf: invalid timeout '-2000000000' for API '/v1/status'");
}

TEST(ConfigValidation, TlsAuthIsCaseInsensitive) {
  auto on = LoadConfigText(Valid().replace(Valid().find("  cert:"), 0, "  auth: ON\n"));
  ASSERT_TRUE(on.ok()) << on.status().message();
  EXPECT_EQ(on->tls.auth, TlsAuth::kOn);
  auto off = LoadConfigText(Valid().replace(Valid().find("  cert:"), 0, "  auth: Off\n"));
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(off->tls.auth, TlsAuth::kOff);
}

// ---- cache defaults -------------------------------------------------------------

TEST(ConfigCache, DocumentedDefaultsResolvedPerField) {
  struct Case {
    std::string section;
    nanoseconds any, unused, offline;
  };
  const std::vector<Case> cases = {
      {"", minutes(5), seconds(30), nanoseconds(0)},
      {"cache:\n  expiry:\n    any: 1m\n", minutes(1), seconds(30), nanoseconds(0)},
      {"cache:\n  expiry:\n    unused: 10s\n", minutes(5), seconds(10), nanoseconds(0)},
      {"cache:\n  expiry:\n    any: 2m\n    unused: 1s\n    offline: 1h\n", minutes(2), seconds(1),
       hours(1)},
  };
  for (const Case& c : cases) {
    auto cfg = LoadConfigText(Valid(c.section));
    ASSERT_TRUE(cfg.ok()) << cfg.status().message();
    EXPECT_EQ(cfg->cache.any, c.any) << c.section;
    EXPECT_EQ(cfg->cache.unused, c.unused) << c.section;
    EXPECT_EQ(cfg->cache.offline, c.offline) << c.section;
    auto o = cfg->cache.ToCacheOptions();
    EXPECT_EQ(o.expiry_any, c.any);
    EXPECT_EQ(o.expiry_unused, c.unused);
    EXPECT_EQ(o.expiry_offline, c.offline);
    EXPECT_EQ(o.probe_interval, seconds(10));
  }
}

// ---- type errors and duplicates ----------------------------------------------------

TEST(ConfigDecode, BareIntegerDurationRejected) {
  EXPECT_EQ(ErrorOf(Valid("api:\n  /v1/status:\n    timeout: 15\n")),
            "yaml: unmarshal errors:\n  line 8: cannot unmarshal !!int `15` into time.Duration");
  EXPECT_EQ(ErrorOf(Valid("cache:\n  expiry:\n    any: 0\n")),
            "yaml: unmarshal errors:\n  line 8: cannot unmarshal !!int `0` into time.Duration");
  // A quoted "0" is a string the duration parser accepts.
  EXPECT_EQ(ErrorOf(Valid("cache:\n  expiry:\n    any: \"0\"\n")), "<ok>");
  EXPECT_EQ(ErrorOf(Valid("cache:\n  expiry:\n    any: 5 minutes\n")),
            "yaml: unmarshal errors:\n  line 8: cannot unmarshal !!str `5 minutes` into "
            "time.Duration");
  EXPECT_EQ(ErrorOf(Valid("cache:\n  expiry:\n    any: not-a-duration\n")),
            "yaml: unmarshal errors:\n  line 8: cannot unmarshal !!str `not-a-d...` into "
            "time.Duration");
}

TEST(ConfigDecode, MapIntoStringAndMultipleErrors) {
  EXPECT_EQ(
      ErrorOf("admin:\n  identity:\n    a: b\ntls:\n  key: [x]\n  cert: c\n" + std::string(kFs)),
      "yaml: unmarshal errors:\n  line 3: cannot unmarshal !!map into string\n"
      "  line 5: cannot unmarshal !!seq into string");
}

TEST(ConfigDecode, ScalarsAreTakenAsText) {
  auto c = LoadConfigText(
      "address: 7373\nadmin:\n  identity: 1234\ntls:\n  key: true\n"
      "  cert: 1.5\n" +
      std::string(kFs));
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->address, "7373");
  EXPECT_EQ(c->admin_identity, "1234");
  EXPECT_EQ(c->tls.key_file, "true");
  EXPECT_EQ(c->tls.cert_file, "1.5");
}

TEST(ConfigDecode, DuplicateKeysAreErrors) {
  EXPECT_EQ(ErrorOf(std::string(kHead) + "address: a\naddress: b\n" + kFs),
            "yaml: unmarshal errors:\n  line 7: mapping key \"address\" already defined at line 6");
  EXPECT_EQ(ErrorOf(Valid("policy:\n  p:\n    allow: []\n  p:\n    deny: []\n")),
            "yaml: unmarshal errors:\n  line 9: mapping key \"p\" already defined at line 7");
}

TEST(ConfigDecode, BoolForms) {
  for (const char* t : {"true", "True", "TRUE", "y", "Y", "yes", "Yes", "YES", "on", "On", "ON"}) {
    auto c = LoadConfigText(Valid(std::string("api:\n  /v1/ready:\n    skip_auth: ") + t + "\n"));
    ASSERT_TRUE(c.ok()) << t << ": " << c.status().message();
    EXPECT_TRUE(c->api.at("/v1/ready").skip_auth) << t;
  }
  for (const char* f :
       {"false", "False", "FALSE", "n", "N", "no", "No", "NO", "off", "Off", "OFF"}) {
    auto c = LoadConfigText(Valid(std::string("api:\n  /v1/ready:\n    skip_auth: ") + f + "\n"));
    ASSERT_TRUE(c.ok()) << f << ": " << c.status().message();
    EXPECT_FALSE(c->api.at("/v1/ready").skip_auth) << f;
  }
  EXPECT_EQ(ErrorOf(Valid("api:\n  /v1/ready:\n    skip_auth: 1\n")),
            "yaml: unmarshal errors:\n  line 8: cannot unmarshal !!int `1` into bool");
  EXPECT_EQ(ErrorOf(Valid("api:\n  /v1/ready:\n    skip_auth: maybe\n")),
            "yaml: unmarshal errors:\n  line 8: cannot unmarshal !!str `maybe` into bool");
}

TEST(ConfigDecode, NullValuesLeaveDefaults) {
  auto c =
      LoadConfigText(Valid("address:\ncache:\napi:\n  /v1/ready:\n    timeout:\nlog:\n"
                           "  error:\n"));
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->address, "");
  EXPECT_EQ(c->api.at("/v1/ready").timeout, nanoseconds(0));
  EXPECT_EQ(c->log.error, kLevelInfo);
}

TEST(ConfigDecode, UnknownKeysWarnWithLine) {
  auto c = LoadConfigText(Valid("bogus: 1\ncache:\n  expiry:\n    anyy: 1s\n"));
  ASSERT_TRUE(c.ok()) << c.status().message();
  ASSERT_EQ(c->warnings.size(), 2u);
  EXPECT_EQ(c->warnings[0], "line 6: unknown config key 'bogus' ignored");
  EXPECT_EQ(c->warnings[1], "line 9: unknown config key 'cache.expiry.anyy' ignored");
  EXPECT_EQ(c->cache.any, minutes(5));  // the misspelt key behaves like an absent one
}

TEST(ConfigDecode, LegacyKeysSectionFails) {
  const std::string e = ErrorOf(std::string(kHead) + "keys:\n  fs:\n    path: /tmp\n");
  EXPECT_TRUE(e.starts_with("yaml: unmarshal errors:\n  line 7: cannot unmarshal !!map into []"))
      << e;
}

TEST(ConfigDecode, PolicyPatternsAreNotExpanded) {
  ScopedEnv env("KES_TEST_PATTERN", "/v1/key/*");
  auto c = LoadConfigText(Valid("policy:\n  p:\n    allow: [\"${KES_TEST_PATTERN}\"]\n"));
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->policies.at("p").allow.at(0), "${KES_TEST_PATTERN}");
}

// ---- environment variables -----------------------------------------------------------

TEST(ConfigEnv, WholeValueReferences) {
  ScopedEnv admin("KES_TEST_ADMIN",
                  "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22");
  ScopedEnv path("KES_TEST_PATH", "/var/kes/keys");
  ScopedEnv ak("KES_TEST_AK", "AKIA");
  auto c = LoadConfigText(
      "admin:\n  identity: ${KES_TEST_ADMIN}\ntls:\n  key: \"${ KES_TEST_PATH }\"\n"
      "  cert: '${KES_TEST_PATH}'\n  password: prefix-${KES_TEST_PATH}\n  ca: $KES_TEST_PATH\n"
      "  proxy:\n    identities: [\"${KES_TEST_AK}\", plain]\n"
      "keystore:\n  aws:\n    secretsmanager:\n      endpoint: ${KES_TEST_PATH}\n"
      "      region: ${KES_TEST_AK:-x}\n");
  // ${X:-default} names a variable literally called "KES_TEST_AK:-x".
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            "kesconf: referenced env. variable 'KES_TEST_AK:-x' in line '14' not found");

  c = LoadConfigText(
      "admin:\n  identity: ${KES_TEST_ADMIN}\ntls:\n  key: \"${ KES_TEST_PATH }\"\n"
      "  cert: '${KES_TEST_PATH}'\n  password: prefix-${KES_TEST_PATH}\n  ca: $KES_TEST_PATH\n"
      "  proxy:\n    identities: [\"${KES_TEST_AK}\", plain]\n"
      "keystore:\n  aws:\n    secretsmanager:\n      endpoint: ${KES_TEST_PATH}\n"
      "      region: us-east-1\n");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->admin_identity, "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22");
  EXPECT_EQ(c->tls.key_file, "/var/kes/keys");
  EXPECT_EQ(c->tls.cert_file, "/var/kes/keys");
  EXPECT_EQ(c->tls.password, "prefix-${KES_TEST_PATH}");
  EXPECT_EQ(c->tls.ca_path, "$KES_TEST_PATH");
  EXPECT_EQ(c->tls.proxy_identities, (std::vector<std::string>{"AKIA", "plain"}));
  EXPECT_EQ(KeyStoreAs<keystore::aws::Config>(c->keystore).options.endpoint, "/var/kes/keys");
}

TEST(ConfigEnv, MissingVariableNamesLine) {
  ::unsetenv("KES_TEST_MISSING");
  EXPECT_EQ(ErrorOf("admin:\n  identity: disabled\ntls:\n  key: ${KES_TEST_MISSING}\n"),
            "kesconf: referenced env. variable 'KES_TEST_MISSING' in line '4' not found");
}

TEST(ConfigEnv, EmptyVariableTriggersMissingValueCheck) {
  ScopedEnv empty("KES_TEST_EMPTY", "");
  EXPECT_EQ(ErrorOf("admin:\n  identity: ${KES_TEST_EMPTY}\ntls:\n  key: k\n  cert: c\n" +
                    std::string(kFs)),
            "kesconf: invalid admin identity: no admin identity");
}

TEST(ConfigEnv, TypedFieldsFromVariables) {
  ScopedEnv dur("KES_TEST_DUR", "30s");
  ScopedEnv bare("KES_TEST_BARE", "30");
  ScopedEnv yes("KES_TEST_YES", "yes");
  ScopedEnv level("KES_TEST_LEVEL", "warn");
  auto c = LoadConfigText(
      Valid("cache:\n  expiry:\n    any: ${KES_TEST_DUR}\napi:\n  /v1/ready:\n    skip_auth: "
            "${KES_TEST_YES}\nlog:\n  error: ${KES_TEST_LEVEL}\n"));
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->cache.any, seconds(30));
  EXPECT_TRUE(c->api.at("/v1/ready").skip_auth);
  EXPECT_EQ(c->log.error, kLevelWarn);
  // The substituted text is a string: "30" is not a duration.
  EXPECT_EQ(ErrorOf(Valid("cache:\n  expiry:\n    any: ${KES_TEST_BARE}\n")),
            "yaml: unmarshal errors:\n  line 8: cannot unmarshal !!str `30` into time.Duration");
}

// ---- durations and log levels -----------------------------------------------------------

TEST(Duration, ParseGoSyntax) {
  struct Case {
    const char* text;
    nanoseconds want;
  };
  const std::vector<Case> ok = {
      {"0", nanoseconds(0)},
      {"0s", nanoseconds(0)},
      {"-0", nanoseconds(0)},
      {"5m0s", minutes(5)},
      {"1.5h", minutes(90)},
      {"300ms", milliseconds(300)},
      {"2h45m", minutes(165)},
      {"-1.5s", milliseconds(-1500)},
      {"+10s", seconds(10)},
      {"1h1m1s1ms1us1ns", nanoseconds(3661001001001)},
      {"1\xC2\xB5s", nanoseconds(1000)},
      {"1\xCE\xBCs", nanoseconds(1000)},
      {".5s", milliseconds(500)},
      {"1.s", seconds(1)},
      {"9223372036854775807ns", nanoseconds(INT64_MAX)},
      {"-9223372036854775808ns", nanoseconds(INT64_MIN)},
  };
  for (const Case& c : ok) {
    auto d = ParseDuration(c.text);
    ASSERT_TRUE(d.ok()) << c.text << ": " << d.status().message();
    EXPECT_EQ(*d, c.want) << c.text;
  }
  for (const char* bad :
       {"", "15", "1d", "s", ".s", "1.5", "-", "1h-5m", "1 s", "9223372036854775808ns", "abc"}) {
    EXPECT_FALSE(ParseDuration(bad).ok()) << bad;
  }
  EXPECT_EQ(ParseDuration("15").status().message(), "time: missing unit in duration \"15\"");
  EXPECT_EQ(ParseDuration("1d").status().message(), "time: unknown unit \"d\" in duration \"1d\"");
  EXPECT_EQ(ParseDuration("abc").status().message(), "time: invalid duration \"abc\"");
}

TEST(Duration, FormatLikeGo) {
  EXPECT_EQ(FormatDuration(nanoseconds(0)), "0s");
  EXPECT_EQ(FormatDuration(minutes(5)), "5m0s");
  EXPECT_EQ(FormatDuration(minutes(-5)), "-5m0s");
  EXPECT_EQ(FormatDuration(minutes(90)), "1h30m0s");
  EXPECT_EQ(FormatDuration(milliseconds(1500)), "1.5s");
  EXPECT_EQ(FormatDuration(milliseconds(300)), "300ms");
  EXPECT_EQ(FormatDuration(nanoseconds(1500)), "1.5\xC2\xB5s");
  EXPECT_EQ(FormatDuration(nanoseconds(42)), "42ns");
  EXPECT_EQ(FormatDuration(nanoseconds(INT64_MIN)), "-2562047h47m16.854775808s");
}

TEST(LogLevel, Grammar) {
  struct Case {
    const char* text;
    int level;
  };
  for (const Case& c : std::vector<Case>{{"", 0},
                                         {"on", 0},
                                         {" ON ", 0},
                                         {"off", 9},
                                         {"debug", -4},
                                         {"Info", 0},
                                         {"WARN", 4},
                                         {"error", 8},
                                         {"info+2", 2},
                                         {"error+1", 9},
                                         {"-4", -4},
                                         {"3", 3}}) {
    auto l = ParseLogLevel(c.text);
    ASSERT_TRUE(l.ok()) << c.text << ": " << l.status().message();
    EXPECT_EQ(*l, c.level) << c.text;
  }
  EXPECT_EQ(ParseLogLevel("debug-2").status().message(), "kesconf: invalid log level 'DEBUG-2'");
  EXPECT_EQ(ParseLogLevel("infox").status().message(), "kesconf: invalid log level 'INFOX'");
  EXPECT_EQ(ParseLogLevel("warn+").status().message(),
            "kesconf: invalid log level suffix '': strconv.Atoi: parsing \"\": invalid syntax");
  EXPECT_EQ(ParseLogLevel("verbose").status().message(),
            "strconv.Atoi: parsing \"VERBOSE\": invalid syntax");
}

TEST(LogLevel, Names) {
  EXPECT_EQ(LogLevelName(-4), "DEBUG");
  EXPECT_EQ(LogLevelName(-6), "DEBUG-2");
  EXPECT_EQ(LogLevelName(0), "INFO");
  EXPECT_EQ(LogLevelName(2), "INFO+2");
  EXPECT_EQ(LogLevelName(4), "WARN");
  EXPECT_EQ(LogLevelName(8), "ERROR");
  EXPECT_EQ(LogLevelName(9), "ERROR+1");
}

// ---- connecting --------------------------------------------------------------------------

TEST(ConnectKeyStore, EveryKindConnects) {
  const stdfs::path dir = TempDir();
  auto c = LoadConfigText(std::string(kHead) +
                          "keystore:\n  fs:\n    path: " + (dir / "keys").string() + "\n");
  ASSERT_TRUE(c.ok()) << c.status().message();
  auto fs = c->keystore->Connect();
  ASSERT_TRUE(fs.ok()) << fs.status().message();
  EXPECT_EQ((*fs)->DisplayName(), "Filesystem: " + (dir / "keys").string());
  EXPECT_TRUE(stdfs::is_directory(dir / "keys"));
  stdfs::remove_all(dir);

  // Every other kind reaches its own connection code: pointed at a closed
  // loopback port, each either starts (no connect-time I/O, as upstream's
  // Azure and AWS) or fails with its own error, never "not supported".
  const std::vector<std::pair<std::string, std::string>> sections = {
      {"vault:\n    endpoint: 'https://127.0.0.1:1'\n    approle: {id: i, secret: s}\n", "vault"},
      {"fortanix:\n    sdkms:\n      endpoint: 'https://127.0.0.1:1'\n      credentials: {key: "
       "k}\n",
       "fortanix.sdkms"},
      {"gemalto:\n    keysecure:\n      endpoint: 'https://127.0.0.1:1'\n      credentials: "
       "{token: t}\n",
       "gemalto.keysecure"},
      {"gcp:\n    secretmanager:\n      project_id: p\n      endpoint: 'https://127.0.0.1:1'\n",
       "gcp.secretmanager"},
      {"aws:\n    secretsmanager:\n      endpoint: 'https://127.0.0.1:1'\n      region: r\n",
       "aws.secretsmanager"},
      {"azure:\n    keyvault:\n      endpoint: 'https://127.0.0.1:1'\n", "azure.keyvault"},
      {"entrust:\n    keycontrol:\n      endpoint: 'https://127.0.0.1:1'\n      vault_id: v\n      "
       "box_id: b\n"
       "      credentials: {username: u, password: p}\n",
       "entrust.keycontrol"},
      {"etcd:\n    endpoints: ['https://127.0.0.1:1']\n", "etcd"},
  };
  for (const auto& [section, kind] : sections) {
    auto u = LoadConfigText(std::string(kHead) + "keystore:\n  " + section);
    ASSERT_TRUE(u.ok()) << kind << ": " << u.status().message();
    EXPECT_EQ(u->keystore->Kind(), kind);
    auto r = u->keystore->Connect();
    if (r.ok()) {
      EXPECT_NE((*r)->DisplayName().find("127.0.0.1:1"), std::string::npos) << kind;
      continue;
    }
    EXPECT_EQ(r.status().message().find("not supported"), std::string::npos)
        << kind << ": " << r.status().message();
  }
}

}  // namespace
}  // namespace kes::config
