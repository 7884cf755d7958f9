// LoadConfigFile: parse (config.md §1), decode (§2-3) and validate (§4).
#include <yaml-cpp/yaml.h>

#include <optional>
#include <set>

#include "common/os.h"
#include "config/config.h"
#include "yaml/decoder.h"

namespace kes::config {
namespace {

using yaml::DecodeAbort;
using yaml::YamlDecoder;
using Field = YamlDecoder::Field;

// --- the raw file, as decoded (before validation) -------------------------------

// Backends whose section is present, in document order.
struct RawKeyStore {
  std::vector<std::pair<const keystore::Backend*, std::unique_ptr<keystore::BackendConfig>>>
      configured;
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
  auto dur = [&d](Duration* out) { return [&d, out](const YAML::Node& n) { d.Duration(n, out); }; };

  std::vector<Field> keystore_fields;
  for (const keystore::Backend* b : keystore::Backends()) {
    keystore_fields.push_back({b->key, [&d, &f, b](const YAML::Node& n) {
                                 if (auto c = b->decode(d, n)) {
                                   f.keystore.configured.emplace_back(b, std::move(c));
                                 }
                               }});
  }
  // Parsed and ignored upstream: a KES server as keystore.
  keystore_fields.push_back(
      {"kes", [&](const YAML::Node& n) {
         std::vector<std::string> endpoints;
         std::string enclave, cert, key, ca;
         d.Mapping(
             n, "keystore.kes", "kesconf.ymlKES",
             {{"endpoint", [&](const YAML::Node& e) { d.StringList(e, &endpoints); }},
              {"enclave", d.Str(&enclave)},
              {"tls",
               d.Section("keystore.kes.tls", "kesconf.ymlKESTLS",
                         {{"cert", d.Str(&cert)}, {"key", d.Str(&key)}, {"ca", d.Str(&ca)}})}});
       }});

  std::vector<Field> top = {
      // Checked by the version pre-check; nothing to decode.
      {"version", [](const YAML::Node&) {}},
      {"address", d.Str(&f.address)},
      {"admin", d.Section("admin", "kesconf.ymlAdmin", {{"identity", d.Str(&f.admin_identity)}})},
      {"tls",
       d.Section("tls", "kesconf.ymlTLS",
               {{"key", d.Str(&f.tls.key_file)},
                {"cert", d.Str(&f.tls.cert_file)},
                {"password", d.Str(&f.tls.password)},
                {"auth", d.Str(&f.tls_auth)},
                {"ca", d.Str(&f.tls.ca_path)},
                {"proxy", d.Section("tls.proxy", "kesconf.ymlTLSProxy",
                                  {{"identities",
                                    [&](const YAML::Node& n) {
                                      d.StringList(n, &f.tls.proxy_identities);
                                    }},
                                   {"header", d.Section("tls.proxy.header", "kesconf.ymlTLSHeader",
                                                      {{"cert", d.Str(&f.tls.proxy_header_cert)}})}})}})},
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
      {"cache", d.Section("cache", "kesconf.ymlCache",
                        {{"expiry", d.Section("cache.expiry", "kesconf.ymlCacheExpiry",
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
       d.Section("log", "kesconf.ymlLog", {{"error", d.Str(&f.log_error)}, {"audit", d.Str(&f.log_audit)}})},
      {"keys",
       [&](const YAML::Node& n) {
         d.Sequence(n, "[]kesconf.ymlKey", [&](const YAML::Node& k) {
           std::string name;
           d.Mapping(k, "keys[]", "kesconf.ymlKey", {{"name", d.Str(&name)}});
           f.keys.push_back(std::move(name));
         });
       }},
      {"keystore", d.Section("keystore", "kesconf.ymlKeyStore", keystore_fields)},
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

// Upstream checks the backends in a fixed order (config.md §3.10): the
// first configured one is validated, a second is an error.
Result<KeyStoreConfig> ValidateKeyStore(RawKeyStore& ks) {
  std::unique_ptr<keystore::BackendConfig> out;
  for (const keystore::Backend* b : keystore::Backends()) {
    for (auto& [backend, config] : ks.configured) {
      if (backend != b) continue;
      if (out)
        return Invalid("kesconf: invalid keystore config: more than once keystore specified");
      KES_TRY(config->Validate());
      out = std::move(config);
    }
  }
  if (!out) return Invalid("kesconf: no keystore specified");
  return KeyStoreConfig(std::move(out));
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
