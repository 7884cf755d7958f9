// The Vault keystore against an in-process fake Vault on 127.0.0.1 that
// answers like a real server (keystores-vault.md §10): K/V v1 and v2 with
// check-and-set, AppRole and Kubernetes login, renew-self, transit, the
// sealed state, 403 for unknown tokens.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "crypto/encoding.h"
#include "keystore/cache.h"
#include "keystore/vault/config.h"
#include "keystore/vault/response.h"
#include "keystore/vault/vault_keystore.h"
#include "keystore_contract.h"
#include "loopback_http.h"
#include "vectors.h"

namespace kes::keystore::vault {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

using Reply = testing::JsonReply;

class FakeVault {
 public:
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_.port()); }

  // Knobs and observations, all under mu_.
  std::mutex mu_;
  std::string role_id = "role", secret_id = "secret", jwt = "jwt-1";
  int64_t token_ttl = 0;
  bool sealed = false;
  bool empty_token = false;
  std::string required_namespace;  // KV and transit must carry it
  int fail_next = 0;               // answer this many requests with 500
  std::set<std::string> tokens;
  int logins = 0, renewals = 0, forbidden = 0;
  std::vector<std::string> health_namespaces;
  std::vector<std::string> login_namespaces;
  std::map<std::string, json> kv1;  // path below "kv/" -> fields
  struct V2 {
    json data;
    int version = 0;
    bool deleted = false;
  };
  std::map<std::string, V2> kv2;  // path below "kv2/data/" -> entry

  void RevokeAll() {
    std::lock_guard lock(mu_);
    tokens.clear();
  }

 private:
  static std::string Header(const std::string& head, const std::string& name) {
    return testing::HeaderValue(head, name);
  }

  static Reply Error(int status, const std::string& msg = "") {
    return {status, msg.empty() ? R"({"errors":[]})" : json({{"errors", {msg}}}).dump()};
  }

  std::string NewToken(json* auth) {
    std::string t = "hvs.token-" + std::to_string(++logins + renewals * 1000);
    tokens.insert(t);
    *auth = {
        {"client_token", empty_token ? "" : t}, {"lease_duration", token_ttl}, {"renewable", true}};
    return t;
  }

  static std::vector<std::string> ListUnder(const std::vector<std::string>& paths,
                                            const std::string& folder) {
    std::set<std::string> out;
    const std::string p = folder.empty() ? "" : folder + "/";
    for (const auto& k : paths) {
      if (!k.starts_with(p)) continue;
      std::string rest = k.substr(p.size());
      const size_t slash = rest.find('/');
      out.insert(slash == std::string::npos ? rest : rest.substr(0, slash + 1));
    }
    return {out.begin(), out.end()};
  }

  Reply Handle(const std::string& head, const std::string& body) {
    std::lock_guard lock(mu_);
    const std::string method = head.substr(0, head.find(' '));
    std::string target = head.substr(method.size() + 1);
    target = target.substr(0, target.find(' '));
    const size_t q = target.find('?');
    const std::string path = target.substr(0, q);
    const std::string query = q == std::string::npos ? "" : target.substr(q + 1);
    const std::string ns = Header(head, "x-vault-namespace");
    const json in = json::parse(body.empty() ? "{}" : body, nullptr, false);

    if (path == "/v1/sys/health") {
      health_namespaces.push_back(ns);
      return {sealed ? 299 : 200, json({{"initialized", true}, {"sealed", sealed}}).dump()};
    }
    if (fail_next > 0) {
      --fail_next;
      return Error(500, "internal error");
    }
    if (sealed) return Error(503, "Vault is sealed");
    json auth;
    if (path == "/v1/auth/approle/login") {
      login_namespaces.push_back(ns);
      if (in.value("role_id", "") != role_id || in.value("secret_id", "") != secret_id) {
        return Error(400, "invalid role or secret ID");
      }
      NewToken(&auth);
      return {200, json({{"auth", auth}}).dump()};
    }
    if (path == "/v1/auth/kubernetes/login") {
      login_namespaces.push_back(ns);
      if (in.value("jwt", "") != jwt || in.value("role", "") != "kes") {
        return Error(403, "permission denied");
      }
      NewToken(&auth);
      return {200, json({{"auth", auth}}).dump()};
    }
    const std::string token = Header(head, "x-vault-token");
    if (!tokens.count(token)) {
      ++forbidden;
      return Error(403, "permission denied");
    }
    if (path == "/v1/auth/token/renew-self") {
      ++renewals;
      return {
          200,
          json({{"auth",
                 {{"client_token", token}, {"lease_duration", token_ttl}, {"renewable", true}}}})
              .dump()};
    }
    if (ns != required_namespace) return Error(404, "no handler for route \"" + path + "\"");
    if (path.starts_with("/v1/transit/encrypt/")) {
      return {200,
              json({{"data", {{"ciphertext", "vault:v1:" + in.value("plaintext", "")}}}}).dump()};
    }
    if (path.starts_with("/v1/transit/decrypt/")) {
      std::string ct = in.value("ciphertext", "");
      if (!ct.starts_with("vault:v1:")) return Error(400, "invalid ciphertext");
      return {200, json({{"data", {{"plaintext", ct.substr(9)}}}}).dump()};
    }
    const bool list = query.find("list=true") != std::string::npos || method == "LIST";
    if (path.starts_with("/v1/kv/")) {
      const std::string key = path.substr(7);
      if (list) {
        std::vector<std::string> paths;
        for (const auto& [k, v] : kv1) paths.push_back(k);
        auto names = ListUnder(paths, key);
        if (names.empty()) return Error(404);
        return {200, json({{"data", {{"keys", names}}}}).dump()};
      }
      if (method == "GET") {
        auto it = kv1.find(key);
        if (it == kv1.end()) return Error(404);
        return {200, json({{"data", it->second}, {"lease_duration", 2764800}}).dump()};
      }
      if (method == "PUT" || method == "POST") {
        kv1[key] = in;
        return {204, ""};
      }
      if (method == "DELETE") {
        kv1.erase(key);
        return {204, ""};
      }
    }
    if (path.starts_with("/v1/kv2/data/")) {
      const std::string key = path.substr(13);
      auto it = kv2.find(key);
      if (method == "GET") {
        if (it == kv2.end() || it->second.version == 0) return Error(404);
        json meta = {{"version", 1}, {"custom_metadata", nullptr}, {"destroyed", false}};
        if (it->second.deleted) {
          return {404, json({{"data", {{"data", nullptr}, {"metadata", meta}}}}).dump()};
        }
        return {200, json({{"data", {{"data", it->second.data}, {"metadata", meta}}}}).dump()};
      }
      if (method == "PUT" || method == "POST") {
        const int current = it == kv2.end() ? 0 : it->second.version;
        if (in.contains("options") && in["options"].value("cas", -1) != current) {
          return Error(400, "check-and-set parameter did not match the current version");
        }
        V2& e = kv2[key];
        e.data = in["data"];
        e.version = current + 1;
        e.deleted = false;
        return {200, json({{"data", {{"version", e.version}}}}).dump()};
      }
      if (method == "DELETE" && it != kv2.end()) {
        it->second.deleted = true;  // soft delete keeps the version
        return {204, ""};
      }
    }
    if (path.starts_with("/v1/kv2/metadata/")) {
      const std::string key = path.substr(17);
      if (list) {
        std::vector<std::string> paths;
        for (const auto& [k, v] : kv2) paths.push_back(k);
        auto names = ListUnder(paths, key);
        if (names.empty()) return Error(404);
        return {200, json({{"data", {{"keys", names}}}}).dump()};
      }
      if (method == "DELETE") {
        kv2.erase(key);
        return {204, ""};
      }
    }
    return Error(404, "no handler for route \"" + path.substr(4) + "\". route entry not found.");
  }

  // Last: stopped (its threads joined) before the state above goes.
  testing::LoopbackJsonServer server_{
      [this](const std::string& head, const std::string& body) { return Handle(head, body); }};
};

std::string NoEnv(const char*) { return ""; }

Config BaseConfig(const FakeVault& v, const std::string& version) {
  Config c;
  c.endpoint = v.url();
  c.engine = version == "v2" ? "kv2" : "kv";
  c.engine_version = version;
  c.prefix = "tenant-1";
  c.has_approle = true;
  c.approle_id = "role";
  c.approle_secret = "secret";
  return c;
}

Timing Fast() {
  Timing t;
  t.min_ttl = milliseconds(1000);
  t.relogin_wait = milliseconds(100);
  t.max_switch_delay = milliseconds(100);
  t.sealed_wait = milliseconds(50);
  t.retry_unit = milliseconds(10);
  return t;
}

std::unique_ptr<KeyStore> MustOpen(const Config& c, const Timing& t = Fast()) {
  auto r = Open(c, NoEnv, t);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? std::move(r).value() : nullptr;
}

using kes::testing::Eventually;

TEST(VaultKeystore, ContractKvV1) {
  FakeVault v;
  auto ks = MustOpen(BaseConfig(v, "v1"));
  ASSERT_NE(ks, nullptr);
  EXPECT_EQ(ks->DisplayName(), "Hashicorp Vault: " + v.url());
  // Vault answers 204 to a delete of a missing path.
  testing::ExerciseContract(*ks, Status::Ok());
  std::lock_guard lock(v.mu_);
  // Upstream's layout: one secret per key, one field named like the key.
  ASSERT_TRUE(v.kv1.count("tenant-1/my-key"));
  EXPECT_EQ(v.kv1["tenant-1/my-key"], json({{"my-key", "again"}}));
}

TEST(VaultKeystore, ContractKvV2) {
  FakeVault v;
  auto ks = MustOpen(BaseConfig(v, "v2"));
  ASSERT_NE(ks, nullptr);
  testing::ExerciseContract(*ks, Status::Ok());
  std::lock_guard lock(v.mu_);
  EXPECT_EQ(v.kv2["tenant-1/my-key2"].data, json({{"my-key2", "v2"}}));
}

TEST(VaultKeystore, ContractKvV2WithTransitInANamespace) {
  FakeVault v;
  v.required_namespace = "ns1";
  Config c = BaseConfig(v, "v2");
  c.namespace_ = "ns1";
  c.has_transit = true;
  c.transit_key = "kes";
  c.status_ping = milliseconds(100);
  auto ks = MustOpen(c);
  ASSERT_NE(ks, nullptr);
  testing::ExerciseContract(*ks, Status::Ok());
  ASSERT_TRUE(Eventually([&] {
    std::lock_guard lock(v.mu_);
    return v.health_namespaces.size() >= 2;
  }));
  std::lock_guard lock(v.mu_);
  // Stored as transit ciphertext; health checks go without the namespace.
  EXPECT_EQ(v.kv2["tenant-1/my-key"].data["my-key"], "vault:v1:" + crypto::Base64Encode("again"));
  for (const auto& ns : v.health_namespaces) EXPECT_EQ(ns, "");
  EXPECT_EQ(v.login_namespaces.front(), "ns1");
}

TEST(VaultKeystore, ServesEntriesWrittenByUpstreamInEveryStoredFormat) {
  FakeVault v;
  std::vector<std::pair<std::string, std::string>> keys;
  for (const auto& t : kes::testing::VectorGroup("key_version_parse")) {
    if (t.at("expected").at("should_fail").get<bool>()) continue;
    const std::string name = "key-" + std::to_string(keys.size());
    keys.emplace_back(name, t.at("input").at("stored_value_text").get<std::string>());
    std::lock_guard lock(v.mu_);
    v.kv1["tenant-1/" + name] = {{name, keys.back().second}};
    v.kv2["tenant-1/" + name] = {{{name, keys.back().second}}, 1, false};
  }
  ASSERT_FALSE(keys.empty());
  for (const char* version : {"v1", "v2"}) {
    KeyCache cache(MustOpen(BaseConfig(v, version)), CacheOptions{});
    for (const auto& [name, value] : keys) {
      auto key = cache.Get(name, kNoDeadline);
      ASSERT_TRUE(key.ok()) << version << " " << name << ": " << key.status().message();
    }
    auto list = cache.List("key-", kNoDeadline);
    ASSERT_TRUE(list.ok()) << list.status().message();
    EXPECT_EQ(list->names.size(), keys.size());
  }
}

TEST(VaultKeystore, LoginFailuresFailStartUp) {
  FakeVault v;
  Config c = BaseConfig(v, "v1");
  c.approle_secret = "wrong";
  auto r = Open(c, NoEnv, Fast());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("invalid role or secret ID"), std::string::npos)
      << r.status().message();
  // An answer without a token is a failed login (upstream accepted it).
  {
    std::lock_guard lock(v.mu_);
    v.empty_token = true;
  }
  r = Open(BaseConfig(v, "v1"), NoEnv, Fast());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "vault: authentication failed: SDK returned no error but also no token");
  Config bad = BaseConfig(v, "v3");
  EXPECT_EQ(Open(bad, NoEnv, Fast()).status().message(), "vault: invalid engine API version 'v3'");
}

TEST(VaultKeystore, KubernetesLoginRereadsTheJwtFileAtEveryLogin) {
  FakeVault v;
  const std::string file =
      (std::filesystem::temp_directory_path() / ("kes-vault-jwt-" + std::to_string(::getpid())))
          .string();
  std::ofstream(file) << "jwt-1\n";
  Config c = BaseConfig(v, "v1");
  c.has_approle = false;
  c.has_kubernetes = true;
  c.kubernetes_role = "kes";
  c.kubernetes_jwt = "jwt-1";
  c.kubernetes_jwt_file = file;
  auto ks = MustOpen(c);
  ASSERT_NE(ks, nullptr);
  ASSERT_TRUE(ks->Create("k", "v", kNoDeadline).ok());
  // The projected token rotates, then Vault forgets our token: the next call
  // logs in again with the new JWT and succeeds.
  std::ofstream(file) << "jwt-2\n";
  {
    std::lock_guard lock(v.mu_);
    v.jwt = "jwt-2";
  }
  v.RevokeAll();
  auto got = ks->Get("k", kNoDeadline);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(*got, "v");
  std::lock_guard lock(v.mu_);
  EXPECT_EQ(v.logins, 2);
  std::filesystem::remove(file);
}

TEST(VaultKeystore, ShortTokensAreRenewedAndRevokedOnesReplacedWhileTrafficFlows) {
  FakeVault v;
  {
    std::lock_guard lock(v.mu_);
    v.token_ttl = 2;  // seconds
  }
  auto ks = MustOpen(BaseConfig(v, "v2"));
  ASSERT_NE(ks, nullptr);
  ASSERT_TRUE(ks->Create("k", "value", kNoDeadline).ok());
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0}, calls{0};
  std::thread traffic([&] {
    while (!stop) {
      auto r = ks->Get("k", kNoDeadline);
      if (!r.ok() || *r != "value") ++failures;
      ++calls;
      std::this_thread::sleep_for(milliseconds(5));
    }
  });
  ASSERT_TRUE(Eventually([&] {
    std::lock_guard lock(v.mu_);
    return v.renewals >= 2;
  }));
  v.RevokeAll();  // expired or revoked outside KES
  ASSERT_TRUE(Eventually([&] {
    std::lock_guard lock(v.mu_);
    return v.forbidden > 0 && v.logins >= 2;
  }));
  const int after = calls.load();
  ASSERT_TRUE(Eventually([&] { return calls.load() > after + 10; }));
  stop = true;
  traffic.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST(VaultKeystore, SealedVaultAnswersNamedErrorsAndCachedKeysKeepServing) {
  FakeVault v;
  Config c = BaseConfig(v, "v1");
  c.status_ping = milliseconds(50);
  auto store = MustOpen(c);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Create("k", testing::kStoredKey, kNoDeadline).ok());
  KeyStore* raw = store.get();
  CacheOptions opts;
  opts.expiry_offline = seconds(60);
  opts.probe_interval = milliseconds(50);
  KeyCache cache(std::move(store), opts);
  ASSERT_TRUE(cache.Get("k", kNoDeadline).ok());
  {
    std::lock_guard lock(v.mu_);
    v.sealed = true;
  }
  ASSERT_TRUE(Eventually([&] { return cache.offline(); }));
  EXPECT_EQ(raw->Create("x", "v", kNoDeadline).message(), "vault: key store is sealed");
  EXPECT_EQ(raw->Status(kNoDeadline).status().message(), "vault: key store is sealed");
  EXPECT_EQ(raw->Status(kNoDeadline).status().code(), Code::kUnreachable);
  EXPECT_TRUE(cache.Get("k", kNoDeadline).ok());  // served from the cache
  {
    std::lock_guard lock(v.mu_);
    v.sealed = false;
  }
  ASSERT_TRUE(Eventually([&] { return raw->Create("x", "v", kNoDeadline).ok(); }));
}

TEST(VaultKeystore, ServerErrorsAreRetriedAndUnreachableVaultIsUnreachable) {
  FakeVault v;
  auto ks = MustOpen(BaseConfig(v, "v1"));
  ASSERT_NE(ks, nullptr);
  {
    std::lock_guard lock(v.mu_);
    v.fail_next = 2;  // two 500s, then the answer: within the 2 retries
  }
  EXPECT_EQ(ks->Get("missing", kNoDeadline).status(), Status::KeyNotFound());
  {
    std::lock_guard lock(v.mu_);
    v.fail_next = 3;
  }
  EXPECT_EQ(ks->Get("missing", kNoDeadline).status().code(), Code::kUnavailable);

  Config gone = BaseConfig(v, "v1");
  gone.endpoint = "http://127.0.0.1:1";
  auto r = Open(gone, NoEnv, Fast());
  ASSERT_FALSE(r.ok());
}

TEST(VaultKeystore, ConcurrentCreateOnV2IsKeyExists) {
  FakeVault v;
  auto ks = MustOpen(BaseConfig(v, "v2"));
  ASSERT_NE(ks, nullptr);
  {
    // Someone soft-deleted the key outside KES: the existence check sees
    // nothing, the check-and-set write fails. That is KeyExists.
    std::lock_guard lock(v.mu_);
    v.kv2["tenant-1/k"] = {json{{"k", "old"}}, 1, true};
  }
  EXPECT_EQ(ks->Create("k", "new", kNoDeadline), Status::KeyExists());
  EXPECT_EQ(ks->Get("k", kNoDeadline).status().message(),
            "vault: failed to read 'tenant-1/k': entry exists but no secret key is present");
}

TEST(VaultKeystore, EnvironmentVariables) {
  FakeVault v;
  auto env = [](std::map<std::string, std::string> m) {
    return [m](const char* n) {
      auto it = m.find(n);
      return it == m.end() ? std::string() : it->second;
    };
  };
  EXPECT_EQ(Open(BaseConfig(v, "v1"), env({{"VAULT_MAX_RETRIES", "x"}}), Fast()).status().message(),
            "vault: error encountered setting up default configuration: could not parse "
            "\"VAULT_MAX_RETRIES\"");
  EXPECT_FALSE(Open(BaseConfig(v, "v1"), env({{"VAULT_CLIENT_TIMEOUT", "soon"}}), Fast()).ok());
  EXPECT_TRUE(Open(BaseConfig(v, "v1"), env({{"VAULT_CLIENT_TIMEOUT", "5s"}}), Fast()).ok());
  for (const auto& [name, value] :
       std::vector<std::pair<std::string, std::string>>{{"VAULT_RATE_LIMIT", "fast"},
                                                        {"VAULT_RATE_LIMIT", "0"},
                                                        {"VAULT_RATE_LIMIT", "4:x"},
                                                        {"VAULT_DISABLE_REDIRECTS", "maybe"},
                                                        {"VAULT_SRV_LOOKUP", "maybe"},
                                                        {"VAULT_HTTP_PROXY", "proxy"},
                                                        {"VAULT_PROXY_ADDR", "ftp://proxy"}}) {
    EXPECT_EQ(Open(BaseConfig(v, "v1"), env({{name, value}}), Fast()).status().message(),
              "vault: error encountered setting up default configuration: could not parse \"" +
                  name + "\"")
        << value;
  }
  EXPECT_TRUE(Open(BaseConfig(v, "v1"), env({{"VAULT_RATE_LIMIT", "100:10"}}), Fast()).ok());
  Config no_socket = BaseConfig(v, "v1");
  no_socket.endpoint = "unix://";
  EXPECT_EQ(Open(no_socket, NoEnv, Fast()).status().message(),
            "vault: invalid endpoint 'unix://': no socket path");
  // VAULT_NAMESPACE applies when the config has none.
  {
    std::lock_guard lock(v.mu_);
    v.required_namespace = "envns";
  }
  auto ks = Open(BaseConfig(v, "v1"), env({{"VAULT_NAMESPACE", "envns"}}), Fast());
  ASSERT_TRUE(ks.ok());
  EXPECT_TRUE((*ks)->Create("k", "v", kNoDeadline).ok());
  EXPECT_EQ(Open(BaseConfig(v, "v1"), env({{"VAULT_CACERT", "/nonexistent/ca.pem"}}), Fast())
                .status()
                .message(),
            "vault: failed to open '/nonexistent/ca.pem': stat /nonexistent/ca.pem: no such file "
            "or directory");
}

TEST(VaultResponse, ParsersAcceptAnyBytes) {
  EXPECT_FALSE(ParseAuth("").ok());
  EXPECT_FALSE(ParseAuth("null").ok());
  EXPECT_FALSE(ParseAuth(R"({"auth":{"client_token":""}})").ok());
  auto a = ParseAuth(R"({"auth":{"client_token":"t","lease_duration":300,"renewable":true}})");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->ttl, seconds(300));
  EXPECT_EQ(ParseKvEntry(R"({"data":{"k":1}})", "k", false).kind, KvEntry::Kind::kNotString);
  EXPECT_EQ(ParseKvEntry(R"({"data":{"x":"1"}})", "k", false).kind, KvEntry::Kind::kNoValue);
  EXPECT_EQ(ParseKvEntry(R"({"data":{"metadata":{}}})", "k", true).kind, KvEntry::Kind::kNoData);
  EXPECT_EQ(ParseKvEntry(R"({"data":{"data":[1]}})", "k", true).kind, KvEntry::Kind::kBadData);
  EXPECT_FALSE(ParseKeyList(R"({"data":{}})").ok());
  EXPECT_FALSE(ParseKeyList(R"({"data":{"keys":[1]}})").ok());
  EXPECT_EQ(ParseErrors(R"({"errors":["a","b"]})"), (std::vector<std::string>{"a", "b"}));
}

}  // namespace
}  // namespace kes::keystore::vault
