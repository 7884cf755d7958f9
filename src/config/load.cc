// LoadConfigFile: parse (config.md §1), decode (§2-3) and validate (§4).
#include <fcntl.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <set>

#include "config/config.h"
#include "config/yaml_decoder.h"

namespace kes::config {
namespace {

using internal::DecodeAbort;
using internal::YamlDecoder;
using Field = YamlDecoder::Field;

// Go's syscall error text: strerror with a lower-case first letter.
std::string GoErrnoText(int err) {
  std::string s = std::strerror(err);
  if (!s.empty() && s[0] >= 'A' && s[0] <= 'Z' && !(s.size() > 1 && s[1] >= 'A' && s[1] <= 'Z')) {
    s[0] = static_cast<char>(s[0] - 'A' + 'a');
  }
  return s;
}

// Reads a whole file; errors worded like Go's os.ReadFile.
Result<std::string> ReadWholeFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::Invalid("open " + path + ": " + GoErrnoText(errno));
  std::string out;
  char buf[8192];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return Status::Invalid("read " + path + ": " + GoErrnoText(err));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

// --- the raw file, as decoded (before validation) -------------------------------

struct RawVault {
  VaultKeyStoreConfig cfg;
  std::string engine, version, transit_engine, approle_engine, kubernetes_engine;
  bool ping_set = false;
};

struct RawKeyStore {
  std::optional<FsKeyStoreConfig> fs;
  std::optional<RawVault> vault;
  std::optional<FortanixKeyStoreConfig> fortanix;
  std::optional<GemaltoKeyStoreConfig> gemalto;
  std::optional<GcpKeyStoreConfig> gcp;
  std::optional<AwsSecretsManagerConfig> aws;
  std::optional<AzureKeyStoreConfig> azure;
  std::optional<EntrustKeyStoreConfig> entrust;
  bool entrust_has_credentials = false;
};

struct RawPolicy {
  std::string name;
  PolicyConfig policy;
};

struct RawApi {
  std::string path;
  ApiConfig api;
};

struct RawFile {
  std::string address;
  std::string admin_identity;
  TlsConfig tls;
  std::string tls_auth;
  std::vector<RawPolicy> policies;  // file order
  Duration cache_any{0}, cache_unused{0}, cache_offline{0};
  std::vector<RawApi> api;  // file order
  std::string log_error, log_audit;
  std::vector<std::string> keys;
  RawKeyStore keystore;
};

// Fills `f` from the document root.
void DecodeFile(YamlDecoder& d, const YAML::Node& root, RawFile& f) {
  auto str = [&d](std::string* out) {
    return [&d, out](const YAML::Node& n) { d.String(n, out); };
  };
  auto dur = [&d](Duration* out) { return [&d, out](const YAML::Node& n) { d.Duration(n, out); }; };
  auto section = [&d](std::string path, std::string go_type, std::vector<Field> fields) {
    return [&d, path = std::move(path), go_type = std::move(go_type), fields = std::move(fields)](
               const YAML::Node& n) { d.Mapping(n, path, go_type, fields); };
  };
  auto tls_ca = [&](std::string path, std::string* ca) {
    return section(std::move(path), "kesconf.tls", {{"ca", str(ca)}});
  };

  RawKeyStore& ks = f.keystore;
  std::vector<Field> keystore_fields = {
      {"fs",
       [&](const YAML::Node& n) {
         FsKeyStoreConfig fs;
         if (d.Mapping(n, "keystore.fs", "kesconf.ymlFS", {{"path", str(&fs.path)}})) ks.fs = fs;
       }},
      {"vault",
       [&](const YAML::Node& n) {
         RawVault v;
         VaultKeyStoreConfig& c = v.cfg;
         std::vector<Field> fields = {
             {"endpoint", str(&c.endpoint)},
             {"engine", str(&v.engine)},
             {"version", str(&v.version)},
             {"namespace", str(&c.namespace_)},
             {"prefix", str(&c.prefix)},
             {"transit",
              [&](const YAML::Node& t) {
                c.has_transit =
                    d.Mapping(t, "keystore.vault.transit", "kesconf.ymlVaultTransit",
                              {{"engine", str(&v.transit_engine)}, {"key", str(&c.transit_key)}});
              }},
             {"approle",
              [&](const YAML::Node& t) {
                c.has_approle =
                    d.Mapping(t, "keystore.vault.approle", "kesconf.ymlVaultAppRole",
                              {{"engine", str(&v.approle_engine)},
                               {"namespace", str(&c.approle_namespace)},
                               {"id", str(&c.approle_id)},
                               {"secret", str(&c.approle_secret)},
                               // Old configs had a retry interval here; it is not parsed.
                               {"retry", [](const YAML::Node&) {}}});
              }},
             {"kubernetes",
              [&](const YAML::Node& t) {
                c.has_kubernetes =
                    d.Mapping(t, "keystore.vault.kubernetes", "kesconf.ymlVaultKubernetes",
                              {{"engine", str(&v.kubernetes_engine)},
                               {"namespace", str(&c.kubernetes_namespace)},
                               {"role", str(&c.kubernetes_role)},
                               {"jwt", str(&c.kubernetes_jwt)},
                               {"retry", [](const YAML::Node&) {}}});
              }},
             {"tls",
              section(
                  "keystore.vault.tls", "kesconf.ymlVaultTLS",
                  {{"key", str(&c.tls_key)}, {"cert", str(&c.tls_cert)}, {"ca", str(&c.tls_ca)}})},
             {"status", section("keystore.vault.status", "kesconf.ymlVaultStatus",
                                {{"ping",
                                  [&](const YAML::Node& p) {
                                    Duration ping{0};
                                    d.Duration(p, &ping);
                                    if (ping.count() != 0) {
                                      c.status_ping = ping;
                                      v.ping_set = true;
                                    }
                                  }}})},
         };
         if (d.Mapping(n, "keystore.vault", "kesconf.ymlVault", fields)) ks.vault = std::move(v);
       }},
      {"fortanix",
       section("keystore.fortanix", "kesconf.ymlFortanix",
               {{"sdkms",
                 [&](const YAML::Node& n) {
                   FortanixKeyStoreConfig c;
                   if (d.Mapping(n, "keystore.fortanix.sdkms", "kesconf.ymlFortanixSDKMS",
                                 {{"endpoint", str(&c.endpoint)},
                                  {"group_id", str(&c.group_id)},
                                  {"credentials", section("keystore.fortanix.sdkms.credentials",
                                                          "kesconf.ymlFortanixCredentials",
                                                          {{"key", str(&c.api_key)}})},
                                  {"tls", tls_ca("keystore.fortanix.sdkms.tls", &c.tls_ca)}})) {
                     ks.fortanix = c;
                   }
                 }}})},
      {"gemalto",
       section("keystore.gemalto", "kesconf.ymlGemalto",
               {{"keysecure",
                 [&](const YAML::Node& n) {
                   GemaltoKeyStoreConfig c;
                   if (d.Mapping(n, "keystore.gemalto.keysecure", "kesconf.ymlKeySecure",
                                 {{"endpoint", str(&c.endpoint)},
                                  {"credentials", section("keystore.gemalto.keysecure.credentials",
                                                          "kesconf.ymlKeySecureCredentials",
                                                          {{"token", str(&c.token)},
                                                           {"domain", str(&c.domain)},
                                                           // Documented but never parsed upstream.
                                                           {"retry", [](const YAML::Node&) {}}})},
                                  {"tls", tls_ca("keystore.gemalto.keysecure.tls", &c.tls_ca)}})) {
                     ks.gemalto = c;
                   }
                 }}})},
      {"gcp",
       section("keystore.gcp", "kesconf.ymlGCP",
               {{"secretmanager",
                 [&](const YAML::Node& n) {
                   GcpKeyStoreConfig c;
                   if (d.Mapping(
                           n, "keystore.gcp.secretmanager", "kesconf.ymlGCPSecretManager",
                           {{"project_id", str(&c.project_id)},
                            {"endpoint", str(&c.endpoint)},
                            {"scopes", [&](const YAML::Node& s) { d.StringList(s, &c.scopes); }},
                            {"credentials", section("keystore.gcp.secretmanager.credentials",
                                                    "kesconf.ymlGCPCredentials",
                                                    {{"client_email", str(&c.client_email)},
                                                     {"client_id", str(&c.client_id)},
                                                     {"private_key_id", str(&c.private_key_id)},
                                                     {"private_key", str(&c.private_key)}})}})) {
                     ks.gcp = c;
                   }
                 }}})},
      {"aws",
       section("keystore.aws", "kesconf.ymlAWS",
               {{"secretsmanager",
                 [&](const YAML::Node& n) {
                   AwsSecretsManagerConfig c;
                   if (d.Mapping(n, "keystore.aws.secretsmanager", "kesconf.ymlAWSSecretsManager",
                                 {{"endpoint", str(&c.endpoint)},
                                  {"region", str(&c.region)},
                                  {"kmskey", str(&c.kms_key)},
                                  {"credentials", section("keystore.aws.secretsmanager.credentials",
                                                          "kesconf.ymlAWSCredentials",
                                                          {{"accesskey", str(&c.access_key)},
                                                           {"secretkey", str(&c.secret_key)},
                                                           {"token", str(&c.session_token)}})}})) {
                     ks.aws = c;
                   }
                 }}})},
      {"azure", section("keystore.azure", "kesconf.ymlAzure",
                        {{"keyvault",
                          [&](const YAML::Node& n) {
                            AzureKeyStoreConfig c;
                            std::vector<Field> fields = {
                                {"endpoint", str(&c.endpoint)},
                                {"credentials",
                                 [&](const YAML::Node& m) {
                                   c.has_credentials =
                                       d.Mapping(m, "keystore.azure.keyvault.credentials",
                                                 "kesconf.ymlAzureCredentials",
                                                 {{"tenant_id", str(&c.tenant_id)},
                                                  {"client_id", str(&c.client_id)},
                                                  {"client_secret", str(&c.client_secret)}});
                                 }},
                                {"managed_identity",
                                 [&](const YAML::Node& m) {
                                   c.has_managed_identity = d.Mapping(
                                       m, "keystore.azure.keyvault.managed_identity",
                                       "kesconf.ymlAzureManagedIdentity",
                                       {{"client_id", str(&c.managed_identity_client_id)}});
                                 }},
                            };
                            if (d.Mapping(n, "keystore.azure.keyvault", "kesconf.ymlAzureKeyVault",
                                          fields)) {
                              ks.azure = c;
                            }
                          }}})},
      {"entrust", section("keystore.entrust", "kesconf.ymlEntrust",
                          {{"keycontrol",
                            [&](const YAML::Node& n) {
                              EntrustKeyStoreConfig c;
                              std::vector<Field> fields = {
                                  {"endpoint", str(&c.endpoint)},
                                  {"vault_id", str(&c.vault_id)},
                                  {"box_id", str(&c.box_id)},
                                  {"credentials", section("keystore.entrust.keycontrol.credentials",
                                                          "kesconf.ymlEntrustCredentials",
                                                          {{"username", str(&c.username)},
                                                           {"password", str(&c.password)}})},
                                  {"tls", tls_ca("keystore.entrust.keycontrol.tls", &c.tls_ca)},
                              };
                              if (d.Mapping(n, "keystore.entrust.keycontrol",
                                            "kesconf.ymlEntrustKeyControl", fields)) {
                                ks.entrust = c;
                              }
                            }}})},
      // Parsed and ignored upstream: a KES server as keystore.
      {"kes", [&](const YAML::Node& n) {
         std::vector<std::string> endpoints;
         std::string enclave, cert, key, ca;
         d.Mapping(
             n, "keystore.kes", "kesconf.ymlKES",
             {{"endpoint", [&](const YAML::Node& e) { d.StringList(e, &endpoints); }},
              {"enclave", str(&enclave)},
              {"tls", section("keystore.kes.tls", "kesconf.ymlKESTLS",
                              {{"cert", str(&cert)}, {"key", str(&key)}, {"ca", str(&ca)}})}});
       }}};

  std::vector<Field> top = {
      // Checked by the version pre-check; nothing to decode.
      {"version", [](const YAML::Node&) {}},
      {"address", str(&f.address)},
      {"admin", section("admin", "kesconf.ymlAdmin", {{"identity", str(&f.admin_identity)}})},
      {"tls",
       section("tls", "kesconf.ymlTLS",
               {{"key", str(&f.tls.key_file)},
                {"cert", str(&f.tls.cert_file)},
                {"password", str(&f.tls.password)},
                {"auth", str(&f.tls_auth)},
                {"ca", str(&f.tls.ca_path)},
                {"proxy", section("tls.proxy", "kesconf.ymlTLSProxy",
                                  {{"identities",
                                    [&](const YAML::Node& n) {
                                      d.StringList(n, &f.tls.proxy_identities);
                                    }},
                                   {"header", section("tls.proxy.header", "kesconf.ymlTLSHeader",
                                                      {{"cert", str(&f.tls.proxy_header_cert)}})}})}})},
      {"policy",
       [&](const YAML::Node& n) {
         d.FreeMapping(n, "map[string]kesconf.ymlPolicy",
                       [&](const std::string& name, const YAML::Node& p) {
                         RawPolicy rp{name, {}};
                         d.Mapping(p, "policy." + name, "kesconf.ymlPolicy",
                                   {{"allow",
                                     [&](const YAML::Node& l) {
                                       d.StringList(l, &rp.policy.allow, /*env=*/false);
                                     }},
                                    {"deny",
                                     [&](const YAML::Node& l) {
                                       d.StringList(l, &rp.policy.deny, /*env=*/false);
                                     }},
                                    {"identities", [&](const YAML::Node& l) {
                                       d.StringList(l, &rp.policy.identities);
                                     }}});
                         f.policies.push_back(std::move(rp));
                       });
       }},
      {"cache", section("cache", "kesconf.ymlCache",
                        {{"expiry", section("cache.expiry", "kesconf.ymlCacheExpiry",
                                            {{"any", dur(&f.cache_any)},
                                             {"unused", dur(&f.cache_unused)},
                                             {"offline", dur(&f.cache_offline)}})}})},
      {"api",
       [&](const YAML::Node& n) {
         d.FreeMapping(n, "map[string]kesconf.ymlAPI",
                       [&](const std::string& path, const YAML::Node& a) {
                         RawApi ra{path, {}};
                         d.Mapping(a, "api." + path, "kesconf.ymlAPI",
                                   {{"skip_auth",
                                     [&](const YAML::Node& b) { d.Bool(b, &ra.api.skip_auth); }},
                                    {"timeout", dur(&ra.api.timeout)}});
                         f.api.push_back(std::move(ra));
                       });
       }},
      {"log",
       section("log", "kesconf.ymlLog", {{"error", str(&f.log_error)}, {"audit", str(&f.log_audit)}})},
      {"keys",
       [&](const YAML::Node& n) {
         d.Sequence(n, "[]kesconf.ymlKey", [&](const YAML::Node& k) {
           std::string name;
           d.Mapping(k, "keys[]", "kesconf.ymlKey", {{"name", str(&name)}});
           f.keys.push_back(std::move(name));
         });
       }},
      {"keystore", section("keystore", "kesconf.ymlKeyStore", keystore_fields)},
  };
  d.Mapping(root, "", "kesconf.yml", top);
}

// --- validation ------------------------------------------------------------------

Status Invalid(std::string msg) { return Status::Invalid(std::move(msg)); }

std::string Lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

Result<KeyStoreConfig> ValidateKeyStore(const RawKeyStore& ks) {
  std::optional<KeyStoreConfig> out;
  const Status more_than_one =
      Invalid("kesconf: invalid keystore config: more than once keystore specified");

  if (ks.fs) {
    if (ks.fs->path.empty()) return Invalid("kesconf: invalid fs keystore: no path specified");
    out = *ks.fs;
  }
  if (ks.vault) {
    if (out) return more_than_one;
    RawVault v = *ks.vault;
    VaultKeyStoreConfig& c = v.cfg;
    const std::string p = "kesconf: invalid vault keystore: ";
    if (c.endpoint.empty()) return Invalid(p + "no endpoint specified");
    if (!c.has_approle && !c.has_kubernetes)
      return Invalid(p + "no authentication method specified");
    if (c.has_approle && c.has_kubernetes) {
      return Invalid(p + "more than one authentication method specified");
    }
    if (c.has_approle) {
      if (c.approle_id.empty())
        return Invalid(p + "invalid approle config: no approle ID specified");
      if (c.approle_secret.empty()) {
        return Invalid(p + "invalid approle config: no approle secret specified");
      }
    }
    if (c.has_kubernetes) {
      if (c.kubernetes_jwt.empty())
        return Invalid(p + "invalid kubernetes config: no JWT specified");
      // A value with a path separator is a file holding the token.
      if (c.kubernetes_jwt.find('/') != std::string::npos) {
        auto jwt = ReadWholeFile(c.kubernetes_jwt);
        if (!jwt.ok()) {
          return Invalid("kesconf: failed to read vault kubernetes JWT from '" + c.kubernetes_jwt +
                         "': " + jwt.status().message());
        }
        c.kubernetes_jwt_file = c.kubernetes_jwt;
        c.kubernetes_jwt = *jwt;
      }
    }
    if (c.has_transit && c.transit_key.empty()) {
      return Invalid(p + "invalid transit config: no key name specified");
    }
    if (!c.tls_key.empty() && c.tls_cert.empty()) {
      return Invalid(p + "invalid tls config: no TLS certificate provided");
    }
    if (c.tls_key.empty() && !c.tls_cert.empty()) {
      return Invalid(p + "invalid tls config: no TLS private key provided");
    }
    if (!v.engine.empty()) c.engine = v.engine;
    if (!v.version.empty()) c.engine_version = v.version;
    if (!v.transit_engine.empty()) c.transit_engine = v.transit_engine;
    if (!v.approle_engine.empty()) c.approle_engine = v.approle_engine;
    if (!v.kubernetes_engine.empty()) c.kubernetes_engine = v.kubernetes_engine;
    out = c;
  }
  if (ks.fortanix) {
    if (out) return more_than_one;
    const std::string p = "kesconf: invalid fortanix SDKMS keystore: ";
    if (ks.fortanix->endpoint.empty()) return Invalid(p + "no endpoint specified");
    if (ks.fortanix->api_key.empty()) return Invalid(p + "no API key specified");
    out = *ks.fortanix;
  }
  if (ks.gemalto) {
    if (out) return more_than_one;
    const std::string p = "kesconf: invalid gemalto keysecure keystore: ";
    if (ks.gemalto->endpoint.empty()) return Invalid(p + "no endpoint specified");
    if (ks.gemalto->token.empty()) return Invalid(p + "no token specified");
    out = *ks.gemalto;
  }
  if (ks.gcp) {
    if (out) return more_than_one;
    if (ks.gcp->project_id.empty()) {
      return Invalid("kesconf: invalid GCP secretmanager keystore: no project ID specified");
    }
    out = *ks.gcp;
  }
  if (ks.aws) {
    if (out) return more_than_one;
    const std::string p = "kesconf: invalid AWS secretsmanager keystore: ";
    if (ks.aws->endpoint.empty()) return Invalid(p + "no endpoint specified");
    if (ks.aws->region.empty()) return Invalid(p + "no region specified");
    out = *ks.aws;
  }
  if (ks.azure) {
    if (out) return more_than_one;
    const AzureKeyStoreConfig& c = *ks.azure;
    const std::string p = "kesconf: invalid Azure keyvault keystore: ";
    if (c.endpoint.empty()) return Invalid(p + "no endpoint specified");
    if (c.has_credentials && c.has_managed_identity) {
      return Invalid(p + "more than one authentication method specified");
    }
    if (c.has_credentials) {
      if (c.tenant_id.empty()) return Invalid(p + "no tenant ID specified");
      if (c.client_id.empty()) return Invalid(p + "no client ID specified");
      if (c.client_secret.empty()) return Invalid(p + "no client secret specified");
    }
    if (c.has_managed_identity && c.managed_identity_client_id.empty()) {
      return Invalid(p + "no client ID specified");
    }
    out = c;
  }
  if (ks.entrust) {
    if (out) return more_than_one;
    const EntrustKeyStoreConfig& c = *ks.entrust;
    const std::string p = "kesconf: invalid Entrust KeyControl keystore: ";
    if (c.endpoint.empty()) return Invalid(p + "no endpoint specified");
    if (c.vault_id.empty()) return Invalid(p + "no vault ID specified");
    if (c.box_id.empty()) return Invalid(p + "no box ID specified");
    // Upstream dereferences a missing credentials block; report it instead.
    if (c.username.empty()) return Invalid(p + "no username specified");
    if (c.password.empty()) return Invalid(p + "no password specified");
    out = c;
  }
  if (!out) return Invalid("kesconf: no keystore specified");
  return *std::move(out);
}

Result<ServerConfig> Validate(RawFile f, std::vector<std::string> warnings) {
  ServerConfig c;
  c.warnings = std::move(warnings);

  if (f.admin_identity.empty())
    return Invalid("kesconf: invalid admin identity: no admin identity");
  c.admin_identity = f.admin_identity;
  c.address = f.address;

  if (f.tls.key_file.empty()) return Invalid("kesconf: invalid tls config: no private key");
  if (f.tls.cert_file.empty()) return Invalid("kesconf: invalid tls config: no certificate");
  const std::string auth = Lower(f.tls_auth);
  if (auth.empty() || auth == "off") {
    f.tls.auth = TlsAuth::kOff;
  } else if (auth == "on") {
    f.tls.auth = TlsAuth::kOn;
  } else {
    return Invalid("kesconf: invalid tls config: invalid auth '" + f.tls_auth + "'");
  }
  for (const std::string& id : f.tls.proxy_identities) {
    if (id == c.admin_identity) {
      return Invalid("kesconf: invalid tls proxy: identity '" + id + "' is already admin");
    }
  }
  c.tls = std::move(f.tls);

  for (const RawPolicy& p : f.policies) {
    for (const std::string& id : p.policy.identities) {
      if (id == c.admin_identity) {
        return Invalid("kesconf: invalid policy '" + p.name + "': identity '" + id +
                       "' is already admin");
      }
      for (const std::string& proxy : c.tls.proxy_identities) {
        if (id == proxy) {
          return Invalid("kesconf: invalid policy '" + p.name + "': identity '" + id +
                         "' is already a TLS proxy");
        }
      }
    }
    c.policies[p.name] = p.policy;  // a repeated name was a duplicate-key error
  }

  if (f.cache_any.count() < 0) {
    return Invalid("kesconf: invalid cache expiry '" + FormatDuration(f.cache_any) + "'");
  }
  if (f.cache_unused.count() < 0) {
    return Invalid("kesconf: invalid cache unused expiry '" + FormatDuration(f.cache_unused) + "'");
  }
  if (f.cache_offline.count() < 0) {
    return Invalid("kesconf: invalid offline cache expiry '" + FormatDuration(f.cache_offline) +
                   "'");
  }
  // Documented defaults, resolved per field (upstream's overwrite bug is
  // not reproduced; see docs/compatibility.md).
  c.cache.any = f.cache_any.count() == 0 ? Duration(std::chrono::minutes(5)) : f.cache_any;
  c.cache.unused =
      f.cache_unused.count() == 0 ? Duration(std::chrono::seconds(30)) : f.cache_unused;
  c.cache.offline = f.cache_offline;

  KES_ASSIGN_OR_RETURN(c.log.error, ParseLogLevel(f.log_error));
  KES_ASSIGN_OR_RETURN(c.log.audit, ParseLogLevel(f.log_audit));

  for (const RawApi& a : f.api) {
    if (a.api.timeout.count() < 0) {
      return Invalid("kesconf: invalid timeout '" + std::to_string(a.api.timeout.count()) +
                     "' for API '" + a.path + "'");
    }
    c.api[a.path] = a.api;
  }

  std::set<std::string> seen;
  for (const std::string& name : f.keys) {
    if (!seen.insert(name).second) {
      return Invalid("kesconf: invalid key config: key '" + name + "' is defined multiple times");
    }
  }
  c.keys = std::move(f.keys);

  KES_ASSIGN_OR_RETURN(c.keystore, ValidateKeyStore(f.keystore));
  return c;
}

// Version pre-check on the raw tree (config.md §1 step 3).
Status CheckVersion(const YAML::Node& root) {
  if (!root.IsMap()) return Status::Ok();
  for (auto it = root.begin(); it != root.end(); ++it) {
    if (!it->first.IsScalar() || it->first.Scalar() != "version") continue;
    // A copy: the iterator's pair is a temporary proxy.
    const YAML::Node v = it->second;
    if (v.IsMap() || v.IsSequence()) {
      return Invalid("kesconf: invalid config version at line '" +
                     std::to_string(YamlDecoder::Line(it->first)) + "'");
    }
    const std::string value = v.IsScalar() ? v.Scalar() : "";
    if (value != "v1") return Invalid("edge: invalid server config version '" + value + "'");
    return Status::Ok();
  }
  return Status::Ok();
}

}  // namespace

Result<ServerConfig> LoadConfigText(std::string_view yaml) {
  try {
    YAML::Node root;
    try {
      root = YAML::Load(std::string(yaml));
    } catch (const YAML::ParserException& e) {
      return Invalid("yaml: line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
    }
    // No document at all (empty file, only comments).
    if (!root.IsDefined() || root.IsNull()) return Invalid("EOF");
    KES_TRY(CheckVersion(root));

    YamlDecoder d;
    RawFile raw;
    DecodeFile(d, root, raw);
    KES_TRY(d.TypeErrors());
    return Validate(std::move(raw), d.TakeWarnings());
  } catch (const DecodeAbort& e) {
    return Invalid(e.message);
  } catch (const YAML::Exception& e) {
    return Invalid("yaml: " + e.msg);
  } catch (const std::exception& e) {
    return Status::Internal(std::string("kesconf: ") + e.what());
  }
}

Result<ServerConfig> LoadConfigFile(const std::string& path) {
  KES_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  return LoadConfigText(text);
}

bool ServerConfig::any_skip_auth() const {
  for (const auto& [path, api] : api) {
    if (api.skip_auth) return true;
  }
  return false;
}

}  // namespace kes::config
