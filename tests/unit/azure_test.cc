// The Azure Key Vault keystore: config validation, the parsers of Key
// Vault / Azure AD / IMDS answers, and the keystore contract against the
// loopback test endpoint (tools/azure-test-endpoint, a child process: Key
// Vault with its bearer challenge, an Azure AD authority and IMDS on TLS).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>

#include "keystore/azure/azure_keystore.h"
#include "keystore/azure/config.h"
#include "keystore/azure/response.h"
#include "keystore_contract.h"
#include "net/http_client.h"

namespace kes::keystore::azure {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

Config SecretConfig(std::string endpoint) {
  Config c;
  c.endpoint = std::move(endpoint);
  c.has_credentials = true;
  c.tenant_id = "00000000-0000-0000-0000-00000000a2e0";
  c.client_id = "11111111-1111-1111-1111-11111111c11e";
  c.client_secret = "kes-test-client-secret";
  return c;
}

TEST(AzureConfig, ValidatesLikeUpstream) {
  const std::string p = "kesconf: invalid Azure keyvault keystore: ";
  Config c;
  EXPECT_EQ(c.Validate().message(), p + "no endpoint specified");
  c = SecretConfig("https://kv.vault.azure.net");
  EXPECT_TRUE(c.Validate().ok());
  c.has_managed_identity = true;
  EXPECT_EQ(c.Validate().message(), p + "more than one authentication method specified");
  c.has_credentials = false;
  EXPECT_EQ(c.Validate().message(), p + "no client ID specified");
  c = SecretConfig("https://kv.vault.azure.net");
  c.client_secret.clear();
  EXPECT_EQ(c.Validate().message(), p + "no client secret specified");
  c.tenant_id.clear();
  EXPECT_EQ(c.Validate().message(), p + "no tenant ID specified");
}

std::string NoEnv(const char*) { return ""; }

TEST(AzureKeystore, OpenRefusesWhatCanNeverWork) {
  auto r = Open(SecretConfig("http://kv.localhost:1"), NoEnv);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("only reached over https"), std::string::npos);
  Config c = SecretConfig("https://kv.localhost:1");
  c.tenant_id = "../other";  // would become part of the token URL
  r = Open(c, NoEnv);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "azure: failed to create default Azure credential: invalid tenantID");
  r = Open(SecretConfig("https://kv.localhost:1"), [](const char* n) {
    return std::string(n) == "AZURE_AUTHORITY_HOST" ? "http://login.example" : "";
  });
  ASSERT_FALSE(r.ok());
  // No network I/O at start: an unreachable vault opens fine.
  EXPECT_TRUE(Open(SecretConfig("https://kv.localhost:1"), NoEnv).ok());
}

TEST(AzureResponse, ErrorBodyCodeIsTheInnerCode) {
  ErrorBody e = ParseError(
      R"({"error":{"code":"Conflict","message":"Secret x is currently in a deleted but recoverable state","innererror":{"code":"ObjectIsDeletedButRecoverable"}}})");
  EXPECT_EQ(e.code, "Conflict");
  EXPECT_EQ(e.inner, "ObjectIsDeletedButRecoverable");
  EXPECT_NE(e.message.find("deleted but recoverable"), std::string::npos);
  e = ParseError(R"({"error":{"code":"SecretNotFound","message":"m"}})");
  EXPECT_EQ(e.inner, "");
}

TEST(AzureResponse, OldestVersionWinsAndTiesKeepTheFirst) {
  auto page = ParseVersions(
      R"({"value":[{"id":"https://v/secrets/k/b","attributes":{"created":20}},
                   {"id":"https://v/secrets/k/a","attributes":{"created":10}},
                   {"id":"https://v/secrets/k/c","attributes":{"created":10}}],"nextLink":null})");
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->next_link, "");
  EXPECT_EQ(OldestVersion(page->versions), "a");
  page = ParseVersions(R"({"value":[{"id":"https://v/secrets/k/x","attributes":{}}]})");
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(OldestVersion(page->versions), "");  // none with created: the latest
  page = ParseVersions(R"({"value":[],"nextLink":"https://v/secrets/k/versions?$skiptoken=1"})");
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->versions.empty());
  EXPECT_FALSE(page->next_link.empty());
}

TEST(AzureResponse, SecretAttributesAndListNames) {
  auto s = ParseSecret(
      R"({"value":"stored","id":"https://v/secrets/k/1","attributes":{"enabled":false,"nbf":5,"exp":9}})");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->value, "stored");
  EXPECT_FALSE(s->enabled);
  EXPECT_EQ(s->not_before, 5);
  EXPECT_EQ(s->expires, 9);
  auto l = ParseSecretList(
      R"({"value":[{"id":"https://v/secrets/a"},{"id":"https://v/secrets/b/"}],"nextLink":"https://v/secrets?$skiptoken=2"})");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->names, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(l->next_link, "https://v/secrets?$skiptoken=2");
}

TEST(AzureResponse, TokensFromAzureAdAndImds) {
  auto t = ParseToken(R"({"token_type":"Bearer","expires_in":3599,"access_token":"eyJ.a"})");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->access_token, "eyJ.a");
  EXPECT_EQ(t->expires_in, 3599);
  t = ParseToken(R"({"access_token":"eyJ.b","expires_in":"86399","expires_on":"1717000000"})");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->expires_in, 86399);
  EXPECT_FALSE(ParseToken(R"({"expires_in":1})").ok());
  EXPECT_EQ(ParseAadError(R"({"error":"invalid_client","error_description":"AADSTS7000215: x"})"),
            "invalid_client: AADSTS7000215: x");
}

TEST(AzureResponse, Challenges) {
  auto c = ParseChallenge(
      R"(Bearer authorization="https://login.windows.net/t", resource="https://vault.azure.net")");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->authorization, "https://login.windows.net/t");
  EXPECT_EQ(c->resource, "https://vault.azure.net");
  c = ParseChallenge(
      R"(Bearer authorization="https://a/t" scope="https://vault.azure.net/.default")");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->scope, "https://vault.azure.net/.default");
  EXPECT_FALSE(ParseChallenge(R"(Basic realm="x")"));
  EXPECT_FALSE(ParseChallenge("Bearer"));
  EXPECT_FALSE(ParseChallenge(R"(Bearer resource="unterminated)"));
}

TEST(AzureResponse, ParsersAcceptAnyBytes) {
  for (std::string_view junk :
       {"", "null", "[]", "{", "\xff\xfe", R"({"value":7})", R"({"value":[1,null,{"id":5}]})",
        R"({"error":[],"access_token":5})"}) {
    (void)ParseError(junk);
    (void)ParseVersions(junk);
    (void)ParseSecret(junk);
    (void)ParseSecretList(junk);
    (void)ParseToken(junk);
    (void)ParseAadError(junk);
    (void)ParseChallenge(junk);
  }
}

// The test endpoint in a child process, stopped with SIGTERM.
class Endpoint {
 public:
  Endpoint() {
    dir_ = std::filesystem::temp_directory_path() /
           ("kes-azure-" + std::to_string(::getpid()) + "-" + std::to_string(++count_));
    std::filesystem::create_directories(dir_);
    int out[2];
    if (::pipe(out) != 0) return;
    const std::string server = std::string(KES_SOURCE_DIR) + "/tools/azure-test-endpoint/server.py";
    const std::string certs = (dir_ / "tls").string();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      ::close(out[0]);
      ::execl("/usr/bin/python3", "python3", server.c_str(), "--port", "0", "--cert-dir",
              certs.c_str(), "--managed-identity", "mi-1", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(out[1]);
    std::string line;
    char ch;
    while (::read(out[0], &ch, 1) == 1 && ch != '\n') line += ch;
    ::close(out[0]);
    port_ = std::atoi(line.c_str());
    ca_ = certs + "/ca.pem";
    net::HttpClientOptions o;
    o.ca_file = ca_;
    admin_ = std::make_unique<net::HttpClient>(o);
  }
  ~Endpoint() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  bool up() const { return port_ > 0; }
  std::string origin(const std::string& host = "127.0.0.1") const {
    return "https://" + host + ":" + std::to_string(port_);
  }
  std::string vault() const { return origin("kv.localhost"); }
  Env env(std::map<std::string, std::string> extra = {}) const {
    extra["SSL_CERT_FILE"] = ca_;
    extra["AZURE_AUTHORITY_HOST"] = origin() + "/";
    return [extra](const char* name) {
      auto it = extra.find(name);
      return it == extra.end() ? std::string() : it->second;
    };
  }
  std::string Admin(const std::string& method, const std::string& path,
                    const std::string& body = "") {
    net::HttpRequest req;
    req.method = method;
    req.url = *net::Url::Parse(origin() + path);
    req.body = body;
    auto r = admin_->Do(req);
    return r.ok() ? r->body : "";
  }

 private:
  static inline int count_ = 0;
  std::filesystem::path dir_;
  pid_t pid_ = -1;
  int port_ = 0;
  std::string ca_;
  std::unique_ptr<net::HttpClient> admin_;
};

Timing Fast() {
  Timing t;
  t.retry_unit = milliseconds(10);
  t.retry_cap = milliseconds(40);
  t.purge_wait_min = milliseconds(20);
  t.purge_wait_max = milliseconds(50);
  t.imds_retry_unit = milliseconds(10);
  return t;
}

TEST(AzureKeystore, ContractWithClientSecret) {
  Endpoint ep;
  ASSERT_TRUE(ep.up());
  // Small pages: listings follow nextLink; deletions stay "in progress"
  // briefly: purges wait out ObjectIsBeingDeleted.
  ep.Admin("POST", "/__admin/settings", R"({"page_size":2,"deleting_seconds":0.2})");
  auto ks = Open(SecretConfig(ep.vault()), ep.env(), Fast());
  ASSERT_TRUE(ks.ok()) << ks.status().message();
  EXPECT_EQ((*ks)->DisplayName(), "Azure KeyVault: " + ep.vault());
  // Key Vault deletes of missing names succeed (upstream: API 200).
  testing::ExerciseContract(**ks, Status::Ok());
}

TEST(AzureKeystore, ContractWithManagedIdentity) {
  Endpoint ep;
  ASSERT_TRUE(ep.up());
  Config c;
  c.endpoint = ep.vault();
  c.has_managed_identity = true;
  c.managed_identity_client_id = "mi-1";
  auto ks = Open(c, ep.env({{"AZURE_POD_IDENTITY_AUTHORITY_HOST", ep.origin()}}), Fast());
  ASSERT_TRUE(ks.ok()) << ks.status().message();
  testing::ExerciseContract(**ks, Status::Ok());
}

TEST(AzureKeystore, ChallengeForAnotherDomainGetsNoToken) {
  Endpoint ep;
  ASSERT_TRUE(ep.up());
  // 127.0.0.1 does not end with ".localhost:<port>", the challenge's resource.
  auto ks = Open(SecretConfig(ep.origin()), ep.env(), Fast());
  ASSERT_TRUE(ks.ok());
  auto got = (*ks)->Get("k", kNoDeadline);
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.status().message().find("doesn't match the requested domain"), std::string::npos)
      << got.status().message();
  EXPECT_NE(ep.Admin("GET", "/__admin/state").find(R"("issued": [])"), std::string::npos);
}

TEST(AzureKeystore, DeadlinesBoundSlowAnswersAndTransportErrorsAreUnreachable) {
  Endpoint ep;
  ASSERT_TRUE(ep.up());
  auto ks = Open(SecretConfig(ep.vault()), ep.env(), Fast());
  ASSERT_TRUE(ks.ok());
  ASSERT_TRUE((*ks)->Create("k", "v", kNoDeadline).ok());
  ep.Admin("POST", "/__faults", R"({"kind":"latency","delay_ms":5000,"count":10})");
  const auto start = std::chrono::steady_clock::now();
  auto got = (*ks)->Get("k", DeadlineIn(milliseconds(300)));
  EXPECT_FALSE(got.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(4));  // generous: not 5 s × tries
  ep.Admin("DELETE", "/__faults");
  ep.Admin("POST", "/__faults", R"({"kind":"drop","count":100})");
  got = (*ks)->Get("k", kNoDeadline);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Code::kUnreachable) << got.status().message();
  ep.Admin("DELETE", "/__faults");
  EXPECT_EQ(*(*ks)->Get("k", kNoDeadline), "v");
}

}  // namespace
}  // namespace kes::keystore::azure
