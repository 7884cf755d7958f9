// The Entrust KeyControl keystore against the loopback test endpoint
// (tools/entrust-test-endpoint, proven by test_entrust_endpoint.py), started
// as a child process on plain HTTP: the keystore contract, upstream's wire
// shapes, paging past 256 secrets, the token loop (renewal, login fallback,
// retried logins) and the error mapping of keystores-cloud.md §5; plus the
// response parsers on any bytes.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "crypto/encoding.h"
#include "keystore/entrust/config.h"
#include "keystore/entrust/keycontrol_keystore.h"
#include "keystore/entrust/response.h"
#include "keystore_contract.h"
#include "net/http_client.h"

extern char** environ;

namespace kes::keystore::entrust {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using testing::Eventually;

// The test endpoint in a child process; stopped with SIGTERM.
class Endpoint {
 public:
  explicit Endpoint(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {
        "/usr/bin/python3", std::string(KES_SOURCE_DIR) + "/tools/entrust-test-endpoint/server.py",
        "--port", "0"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int out[2];
    EXPECT_EQ(pipe(out), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    EXPECT_EQ(posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    std::string line;
    char c;
    while (read(out[0], &c, 1) == 1 && c != '\n') line += c;
    close(out[0]);
    port_ = std::atoi(line.c_str());
    EXPECT_GT(port_, 0) << "endpoint did not start";
  }
  ~Endpoint() { Stop(); }

  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // An admin API call; the decoded answer.
  json Admin(const std::string& method, const std::string& path, const json& doc = nullptr) {
    net::HttpRequest req;
    req.method = method;
    req.url = *net::Url::Parse(url() + path);
    if (!doc.is_null()) req.body = doc.dump();
    auto resp = http_.Do(req);
    EXPECT_TRUE(resp.ok());
    if (!resp.ok()) return nullptr;
    EXPECT_EQ(resp->status, 200) << resp->body;
    return json::parse(resp->body, nullptr, false);
  }

  json Requests(const std::string& op) {
    json out = json::array();
    const json log = Admin("GET", "/__admin/requests");
    for (const json& r : log["requests"]) {
      if (r["op"] == op) out.push_back(r);
    }
    return out;
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  net::HttpClient http_;
};

Config BaseConfig(const Endpoint& ep) {
  Config c;
  c.endpoint = ep.url();
  c.vault_id = "kes-vault";
  c.box_id = "kes-box";
  c.username = "kes";
  c.password = "kes-test-password";
  EXPECT_TRUE(c.Validate().ok());
  return c;
}

Timing Fast() {
  Timing t;
  t.relogin_retry = milliseconds(100);
  t.retry.base = milliseconds(10);
  t.retry.jitter = milliseconds(10);
  return t;
}

std::unique_ptr<KeyStore> MustOpen(const Config& c, const Timing& t = Fast()) {
  auto r = Open(c, t);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? std::move(r).value() : nullptr;
}

TEST(EntrustKeystore, Contract) {
  Endpoint ep;
  auto ks = MustOpen(BaseConfig(ep));
  ASSERT_NE(ks, nullptr);
  EXPECT_EQ(ks->DisplayName(), "Entrust KeyControl: " + ep.url());
  testing::ExerciseContract(*ks, Status::KeyNotFound());
  // Stored under its exact name; the secret's bytes are the stored value.
  EXPECT_EQ(ep.Admin("GET", "/__admin/secrets")["kes-box"]["my-key"]["value"], "again");
}

TEST(EntrustKeystore, RequestsHaveUpstreamsShape) {
  Endpoint ep;
  auto ks = MustOpen(BaseConfig(ep));
  ASSERT_NE(ks, nullptr);
  ASSERT_TRUE(ks->Create("k", testing::kStoredKey, kNoDeadline).ok());
  ASSERT_TRUE(ks->Get("k", kNoDeadline).ok());
  ASSERT_TRUE(ks->Delete("k", kNoDeadline).ok());
  ASSERT_TRUE(ks->List("", 0, kNoDeadline).ok());
  const json login = ep.Requests("Login");
  ASSERT_EQ(login.size(), 1u);
  EXPECT_EQ(login[0]["path"], "/vault/1.0/Login/kes-vault/");
  EXPECT_EQ(login[0]["content_type"], "application/json");
  EXPECT_EQ(json::parse(login[0]["body"].get<std::string>()),
            json({{"username", "kes"}, {"password", "kes-test-password"}}));
  const json create = ep.Requests("CreateSecret");
  ASSERT_EQ(create.size(), 1u);
  EXPECT_EQ(json::parse(create[0]["body"].get<std::string>()),
            json({{"box_id", "kes-box"},
                  {"name", "k"},
                  {"secret_data", crypto::Base64Encode(testing::kStoredKey)}}));
  EXPECT_EQ(json::parse(ep.Requests("CheckoutSecret")[0]["body"].get<std::string>()),
            json({{"box_id", "kes-box"}, {"secret_id", "k"}}));
  EXPECT_EQ(json::parse(ep.Requests("DeleteSecret")[0]["body"].get<std::string>()),
            json({{"box_id", "kes-box"}, {"secret_id", "k"}}));
  EXPECT_EQ(json::parse(ep.Requests("ListSecretIds")[0]["body"].get<std::string>()),
            json({{"box_id", "kes-box"}, {"max_items", 256}}));
  for (const char* op :
       {"GetBox", "CreateSecret", "CheckoutSecret", "DeleteSecret", "ListSecretIds"}) {
    for (const json& r : ep.Requests(op)) {
      EXPECT_TRUE(r["content_type"].is_null()) << op;  // only Login has one
      EXPECT_TRUE(r["token"].is_string()) << op;
      EXPECT_EQ(r["method"], "POST");
      EXPECT_EQ(r["path"], std::string("/vault/1.0/") + op + "/");
    }
  }
}

TEST(EntrustKeystore, ListingFollowsNextTokenSkipsExpiredAndFiltersLocally) {
  Endpoint ep;
  std::vector<std::string> want;
  json bulk = json::array();
  for (int i = 0; i < 300; ++i) {
    want.push_back("key-" + std::to_string(1000 + i));
    bulk.push_back({{"name", want.back()}, {"value", "v"}});
  }
  ep.Admin("POST", "/__admin/secrets", {{"secrets", bulk}});
  ep.Admin("POST", "/__admin/secrets", {{"name", "key-0"}, {"value", "v"}, {"expired", true}});
  ep.Admin("POST", "/__admin/secrets", {{"name", "other"}, {"value", "v"}});
  auto ks = MustOpen(BaseConfig(ep));
  ASSERT_NE(ks, nullptr);
  auto all = ks->List("key-", 0, kNoDeadline);
  ASSERT_TRUE(all.ok()) << all.status().message();
  EXPECT_EQ(all->names, want);  // no empty names, no expired one, sorted
  EXPECT_EQ(all->continue_at, "");
  EXPECT_EQ(ep.Requests("ListSecretIds").size(), 2u);  // two server pages
  auto some = ks->List("key-12", 0, kNoDeadline);
  ASSERT_TRUE(some.ok());
  EXPECT_EQ(some->names.size(), 100u);
  EXPECT_EQ(some->names.front(), "key-1200");
}

TEST(EntrustKeystore, TokenIsRenewedAtHalfItsLifetime) {
  Endpoint ep({"--token-ttl", "2"});
  auto ks = MustOpen(BaseConfig(ep));
  ASSERT_NE(ks, nullptr);
  ASSERT_TRUE(Eventually([&] { return ep.Admin("GET", "/__admin/state")["renewals"] >= 3; }));
  EXPECT_EQ(ep.Admin("GET", "/__admin/state")["logins"], 1);
  EXPECT_TRUE(ks->Status(kNoDeadline).ok());
  for (const json& r : ep.Requests("Renew")) {  // no body, the token, no Content-Type
    EXPECT_EQ(r["body"], "");
    EXPECT_EQ(r["content_length"], "0");
    EXPECT_TRUE(r["token"].is_string());
    EXPECT_TRUE(r["content_type"].is_null());
  }
}

TEST(EntrustKeystore, CloseEndsARenewalUnderWay) {
  Endpoint ep({"--token-ttl", "1"});
  auto ks = MustOpen(BaseConfig(ep));
  ASSERT_NE(ks, nullptr);
  ep.Admin("POST", "/__faults", {{"kind", "latency"}, {"op", "Renew"}, {"delay_ms", 60000}});
  // The rule is taken: a renewal now waits for its answer.
  ASSERT_TRUE(Eventually([&] { return ep.Admin("GET", "/__faults")["rules"].empty(); }));
  const auto start = std::chrono::steady_clock::now();
  ks->Close();
  // Generous: the renewal waits 60 s for its answer.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
}

TEST(EntrustKeystore, FailedRenewalLogsInAndFailedLoginsAreRetried) {
  // Upstream: renew fails, login fails: the timer is never re-armed.
  Endpoint ep({"--token-ttl", "1"});
  auto ks = MustOpen(BaseConfig(ep));
  ASSERT_NE(ks, nullptr);
  ep.Admin("POST", "/__faults",
           json({{"rules",
                  {{{"kind", "error"}, {"op", "Renew"}, {"count", 1000}},
                   {{"kind", "error"}, {"op", "Login"}, {"count", 5}}}}}));
  ASSERT_TRUE(Eventually([&] { return ep.Admin("GET", "/__admin/state")["logins"] >= 2; }));
  // Past the first token's life, operations work on the new one.
  ASSERT_TRUE(Eventually([&] { return ks->Create("after", "v", kNoDeadline).ok(); }));
  EXPECT_EQ(ep.Admin("GET", "/__admin/state")["renewals"], 0);
}

TEST(EntrustKeystore, RejectedTokenLogsInOnceAndRetries) {
  Endpoint ep;
  auto ks = MustOpen(BaseConfig(ep));
  ASSERT_NE(ks, nullptr);
  ep.Admin("POST", "/__admin/tokens/expire");
  EXPECT_TRUE(ks->Create("k", "v", kNoDeadline).ok());
  EXPECT_EQ(ep.Admin("GET", "/__admin/state")["logins"], 2);
}

TEST(EntrustKeystore, ErrorMapping) {
  Endpoint ep;
  auto ks = MustOpen(BaseConfig(ep));
  ASSERT_NE(ks, nullptr);
  ep.Admin("POST", "/__faults",
           {{"kind", "error"}, {"status", 400}, {"op", "CreateSecret"}, {"error", "Box locked"}});
  EXPECT_EQ(ks->Create("k", "v", kNoDeadline), Status::Unavailable("keycontrol: Box locked"));
  ep.Admin("POST", "/__faults",
           {{"kind", "error"}, {"status", 404}, {"op", "CheckoutSecret"}, {"text", "no route"}});
  EXPECT_EQ(ks->Get("k", kNoDeadline).status(),
            Status::Unavailable("keycontrol: 404 Not Found: no route"));
  // A 409 / 404 with another text is no KeyExists / KeyNotFound.
  ep.Admin("POST", "/__faults",
           {{"kind", "error"}, {"status", 409}, {"op", "CreateSecret"}, {"error", "Conflict"}});
  EXPECT_EQ(ks->Create("k", "v", kNoDeadline).code(), Code::kUnavailable);
  ep.Admin("POST", "/__faults",
           {{"kind", "error"}, {"status", 404}, {"op", "DeleteSecret"}, {"error", "Box gone"}});
  EXPECT_EQ(ks->Delete("k", kNoDeadline), Status::Unavailable("keycontrol: Box gone"));
  ep.Admin("POST", "/__faults",
           {{"kind", "error"},
            {"status", 403},
            {"op", "GetBox"},
            {"count", 2},
            {"error", "Access denied"}});
  auto st = ks->Status(kNoDeadline);
  EXPECT_EQ(st.status(), Status::Unavailable("keycontrol: Access denied"));
  ep.Stop();
  st = ks->Status(kNoDeadline);
  EXPECT_EQ(st.status().code(), Code::kUnreachable);
  EXPECT_TRUE(st.status().message().starts_with("keycontrol: failed to fetch status: "));
  auto got = ks->Get("k", kNoDeadline);
  EXPECT_EQ(got.status().code(), Code::kUnreachable);
  EXPECT_TRUE(got.status().message().starts_with("keycontrol: failed to fetch key: "));
}

TEST(EntrustKeystore, ServerErrorsAndDroppedConnectionsAreRetriedTwice) {
  Endpoint ep;
  auto ks = MustOpen(BaseConfig(ep));
  ASSERT_NE(ks, nullptr);
  ep.Admin("POST", "/__faults",
           {{"kind", "error"}, {"status", 503}, {"op", "CreateSecret"}, {"count", 2}});
  EXPECT_TRUE(ks->Create("k", "v", kNoDeadline).ok());
  ep.Admin("POST", "/__faults", {{"kind", "drop"}, {"op", "CheckoutSecret"}, {"count", 2}});
  EXPECT_EQ(*ks->Get("k", kNoDeadline), "v");
  ep.Admin("POST", "/__faults",
           {{"kind", "error"},
            {"status", 500},
            {"op", "DeleteSecret"},
            {"count", 3},
            {"error", "busy"}});
  EXPECT_EQ(ks->Delete("k", kNoDeadline), Status::Unavailable("keycontrol: busy"));
  EXPECT_EQ(ep.Requests("DeleteSecret").size(), 3u);
  EXPECT_TRUE(ks->Delete("k", kNoDeadline).ok());
}

TEST(EntrustKeystore, ConnectFailures) {
  Endpoint ep;
  Config c = BaseConfig(ep);
  c.password = "wrong";
  auto r = Open(c, Fast());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "keycontrol: login failed: Invalid username or password");
  c = BaseConfig(ep);
  c.box_id = "no-box";
  r = Open(c, Fast());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "keycontrol: Box not found");
  ep.Admin("POST", "/__admin/login", {{"empty_token", true}});
  r = Open(BaseConfig(ep), Fast());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "keycontrol: login failed: auth token is empty");
  c = BaseConfig(ep);
  c.tls_ca = "/nonexistent/ca.pem";
  EXPECT_FALSE(Open(c, Fast()).ok());
}

TEST(EntrustResponse, AuthToken) {
  auto t = ParseAuthToken(R"({"access_token":"t1","expires_at":"2025-01-30T10:41:53.123Z"})");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->token, "t1");
  ASSERT_TRUE(t->expires_at.has_value());
  EXPECT_EQ(std::chrono::duration_cast<milliseconds>(t->expires_at->time_since_epoch()).count(),
            1738233713123);
  t = ParseAuthToken(R"({"access_token":"t1"})");
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(t->expires_at.has_value());
  t = ParseAuthToken(R"({"access_token":"t1","expires_at":"0001-01-01T00:00:00Z"})");
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(t->expires_at.has_value());
  EXPECT_EQ(ParseAuthToken(R"({"access_token":""})").status().message(),
            "keycontrol: login failed: auth token is empty");
  EXPECT_FALSE(ParseAuthToken(R"({"access_token":"t","expires_at":"tomorrow"})").ok());
  EXPECT_FALSE(ParseAuthToken(R"({"access_token":1})").ok());
}

TEST(EntrustResponse, SecretDataPageAndErrorText) {
  EXPECT_EQ(*ParseSecretData(R"({"secret_data":"YWJj"})"), "abc");
  EXPECT_FALSE(ParseSecretData(R"({"secret_data":"%%"})").ok());
  EXPECT_FALSE(ParseSecretData(R"({"secret_data":1})").ok());
  auto page = ParseSecretPage(
      R"({"secrets":[{"name":"a","expired":false},{"name":"b","expired":true},{"name":"c"}],)"
      R"("next_token":"nt"})");
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->names, (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(page->next_token, "nt");
  EXPECT_TRUE(ParseSecretPage(R"({"secrets":null,"next_token":""})").ok());
  EXPECT_FALSE(ParseSecretPage(R"({"secrets":{}})").ok());
  EXPECT_EQ(
      ErrorText(409, "application/json; charset=utf-8", R"({"error":"Secret already exists"})"),
      "Secret already exists");
  EXPECT_EQ(ErrorText(502, "text/html", "<h1>bad</h1>"), "502 Bad Gateway: <h1>bad</h1>");
  EXPECT_EQ(ErrorText(599, "", "x"), "599: x");
}

TEST(EntrustResponse, ParsersAcceptAnyBytes) {
  const std::vector<std::string> inputs = {"",
                                           "null",
                                           "[]",
                                           "{",
                                           "\xff\xfe",
                                           "{\"secrets\":[1,2]}",
                                           R"({"access_token":"a","expires_at":5})",
                                           std::string(3, '\0')};
  for (const std::string& in : inputs) {
    (void)ParseAuthToken(in);
    (void)ParseSecretData(in);
    (void)ParseSecretPage(in);
    (void)ErrorText(500, "application/json", in);
  }
}

}  // namespace
}  // namespace kes::keystore::entrust
