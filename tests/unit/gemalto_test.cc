// The Thales CipherTrust / Gemalto KeySecure keystore: response parsing,
// config decoding, and the shared keystore contract against the loopback
// test endpoint (tools/gemalto-test-endpoint, plain HTTP on 127.0.0.1).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "config/config.h"
#include "keystore/gemalto/config.h"
#include "keystore/gemalto/gemalto_keystore.h"
#include "keystore/gemalto/response.h"
#include "keystore_contract.h"
#include "net/http_client.h"

extern char** environ;

namespace kes::keystore::gemalto {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

net::HttpResponse Answer(int status, std::string body,
                         std::string content_type = "application/json; charset=utf-8") {
  net::HttpResponse r;
  r.status = status;
  if (!content_type.empty()) r.headers.emplace_back("content-type", std::move(content_type));
  r.body = std::move(body);
  return r;
}

TEST(GemaltoResponse, LoginAnswerChecksLikeUpstream) {
  auto ok = ParseLogin(Answer(200, R"({"jwt":"eyJ.a.b","duration":300,"token_type":"Bearer"})"));
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(ok->jwt, "eyJ.a.b");
  EXPECT_EQ(ok->duration, seconds(300));

  const std::vector<std::pair<net::HttpResponse, std::string>> bad = {
      {Answer(401, R"({"code":9,"codeDesc":"NCERRUnauthorized: bad token"})"),
       "401 Unauthorized: NCERRUnauthorized: bad token (9)"},
      {Answer(400, "  denied by proxy\n", "text/plain"), "400 Bad Request: denied by proxy (400)"},
      {Answer(599, "", ""), "599:  (599)"},
      {Answer(200, R"({"jwt":"","duration":300,"token_type":"Bearer"})"),
       "server response does not contain an auth token"},
      {Answer(200, R"({"duration":300,"token_type":"Bearer"})"),
       "server response does not contain an auth token"},
      {Answer(200, R"({"jwt":"x","duration":300,"token_type":"bearer"})"),
       "unexpected auth token type 'bearer'"},
      {Answer(200, R"({"jwt":"x","duration":0,"token_type":"Bearer"})"),
       "invalid auth token expiry '0'"},
      {Answer(200, R"({"jwt":"x","duration":-5,"token_type":"Bearer"})"),
       "invalid auth token expiry '-5'"},
      {Answer(200, R"({"jwt":"x","duration":"300","token_type":"Bearer"})"),
       "invalid auth token expiry '\"300\"'"},
      {Answer(200, "not json"), "gemalto: invalid auth token response"},
  };
  for (const auto& [resp, text] : bad) {
    auto r = ParseLogin(resp);
    ASSERT_FALSE(r.ok()) << resp.body;
    EXPECT_EQ(r.status().message(), text);
  }
}

TEST(GemaltoResponse, ErrorsAreJsonOnlyWhenTheContentTypeSaysSo) {
  ApiError e = ParseError(Answer(404, R"({"code":5,"codeDesc":"NCERRResourceNotFound"})"));
  EXPECT_EQ(e.code, 5);
  EXPECT_EQ(e.desc, "NCERRResourceNotFound");
  e = ParseError(Answer(401, "Token is expired\n", "text/plain; charset=utf-8"));
  EXPECT_EQ(e.code, 401);
  EXPECT_EQ(e.desc, "Token is expired");
  e = ParseError(Answer(500, R"({"code":5})", "text/html"));
  EXPECT_EQ(e.code, 500);
  EXPECT_EQ(e.desc, R"({"code":5})");
  EXPECT_EQ(StatusLine(503), "503 Service Unavailable");
  EXPECT_EQ(StatusLine(418), "418");
}

TEST(GemaltoResponse, ExportAndListPages) {
  auto m = ParseMaterial(R"({"id":"1","name":"k","material":"CiQK"})");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(*m, "CiQK");
  EXPECT_FALSE(ParseMaterial(R"({"id":"1","name":"k"})").ok());
  EXPECT_FALSE(ParseMaterial(R"({"material":7})").ok());

  auto p =
      ParsePage(R"({"skip":200,"limit":200,"total":230,"resources":[{"name":"a"},{"name":"b"}]})");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->skip, 200);
  EXPECT_EQ(p->total, 230);
  EXPECT_EQ(p->names, (std::vector<std::string>{"a", "b"}));
  p = ParsePage(R"({"skip":0,"total":0,"resources":null})");
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->names.empty());
  EXPECT_FALSE(ParsePage(R"({"resources":{}})").ok());
  EXPECT_FALSE(ParsePage(R"({"resources":[{"id":"x"}]})").ok());
  EXPECT_FALSE(ParsePage("[]").ok());
}

TEST(GemaltoResponse, ParsersAcceptAnyBytes) {
  std::mt19937 rng(7);
  const std::string seeds[] = {
      R"({"jwt":"x","duration":1e400,"token_type":"Bearer"})",
      R"({"skip":18446744073709551615,"total":-1,"resources":[null,1,"a",{"name":1}]})",
      R"({"material":null,"code":"x","codeDesc":5})"};
  for (int i = 0; i < 2000; ++i) {
    std::string body = seeds[i % 3];
    for (int k = 0; k < 3; ++k) body[rng() % body.size()] = static_cast<char>(rng());
    (void)ParseLogin(Answer(200, body));
    (void)ParseLogin(Answer(500, body));
    (void)ParseMaterial(body);
    (void)ParsePage(body);
  }
}

TEST(GemaltoConfig, UpstreamSectionDecodes) {
  auto c = config::LoadConfigText(
      "address: 0.0.0.0:7373\nadmin:\n  identity: disabled\ntls:\n  key: k\n  cert: c\n"
      "keystore:\n  gemalto:\n    keysecure:\n      endpoint: https://127.0.0.1\n"
      "      credentials:\n        token: refresh\n        domain: dom\n        retry: 15s\n"
      "      tls:\n        ca: /etc/ca.pem\n");
  ASSERT_TRUE(c.ok()) << c.status().message();
  const auto* g = dynamic_cast<const Config*>(c->keystore.get());
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->Kind(), "gemalto.keysecure");
  EXPECT_EQ(g->endpoint, "https://127.0.0.1");
  EXPECT_EQ(g->token, "refresh");
  EXPECT_EQ(g->domain, "dom");
  EXPECT_EQ(g->tls_ca, "/etc/ca.pem");
}

TEST(GemaltoConfig, ConnectErrors) {
  Config c;
  c.endpoint = "https://127.0.0.1:1";
  c.token = "t";
  c.tls_ca = "/nonexistent/ca.pem";
  auto r = Open(c);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("/nonexistent/ca.pem"), std::string::npos)
      << r.status().message();
  c.tls_ca.clear();
  c.endpoint = "not a url";
  EXPECT_FALSE(Open(c).ok());
  // Nobody listens: the login fails in transport, start-up fails.
  c.endpoint = "http://127.0.0.1:1";
  r = Open(c);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnreachable) << r.status().message();
}

// tools/gemalto-test-endpoint/server.py in a child process, plain HTTP.
class Endpoint {
 public:
  explicit Endpoint(std::vector<std::string> extra = {}) {
    dir_ = std::filesystem::temp_directory_path() /
           ("kes-gemalto-test-" + std::to_string(getpid()) + "-" + std::to_string(++counter_));
    std::filesystem::create_directories(dir_);
    const std::string port_file = (dir_ / "port.json").string();
    std::vector<std::string> args = {
        "/usr/bin/python3", std::string(KES_SOURCE_DIR) + "/tools/gemalto-test-endpoint/server.py",
        "--port",           "0",
        "--port-file",      port_file};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    // No pipe of ctest's stays open in the child: a crashed test must not
    // leave ctest waiting for its output to end.
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, (dir_ / "endpoint.log").c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    testing::Eventually([&] { return std::filesystem::exists(port_file) || Exited(); });
    std::ifstream in(port_file);
    json info = json::parse(in, nullptr, false);
    if (info.is_object() && info["port"].is_number()) {
      url_ = "http://127.0.0.1:" + std::to_string(info["port"].get<int>());
    }
  }
  ~Endpoint() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  const std::string& url() const { return url_; }

  json Admin(const std::string& method, const std::string& path, const json& doc = nullptr) {
    net::HttpClient http;
    net::HttpRequest req;
    req.method = method;
    req.url = *net::Url::Parse(url_ + path);
    if (!doc.is_null()) req.body = doc.dump();
    auto r = http.Do(req);
    if (!r.ok()) return nullptr;
    return json::parse(r->body, nullptr, false);
  }
  int Logins() { return Admin("GET", "/__admin/state").value("logins", -1); }

 private:
  bool Exited() { return pid_ <= 0 || waitpid(pid_, nullptr, WNOHANG) == pid_; }

  static inline int counter_ = 0;
  std::filesystem::path dir_;
  pid_t pid_ = -1;
  std::string url_;
};

Config ConfigFor(const Endpoint& ep) {
  Config c;
  c.endpoint = ep.url();
  c.token = "kes-test-refresh-token";
  return c;
}

TEST(GemaltoKeyStore, Contract) {
  Endpoint ep;
  ASSERT_FALSE(ep.url().empty());
  auto ks = Open(ConfigFor(ep));
  ASSERT_TRUE(ks.ok()) << ks.status().message();
  EXPECT_EQ((*ks)->DisplayName(), "Gemalto KeySecure: " + ep.url());
  // A delete of a missing secret is success (404 is also the server's
  // answer to a denied delete, keystores-cloud.md §3.2).
  testing::ExerciseContract(**ks, Status::Ok());
}

TEST(GemaltoKeyStore, StoresTheValueAsASeedSecretNamedLikeTheKey) {
  Endpoint ep;
  auto ks = Open(ConfigFor(ep));
  ASSERT_TRUE(ks.ok()) << ks.status().message();
  ASSERT_TRUE((*ks)->Create("k1", testing::kStoredKey, kNoDeadline).ok());
  json secrets = ep.Admin("GET", "/__admin/secrets")["secrets"];
  ASSERT_EQ(secrets.size(), 1u);
  EXPECT_EQ(secrets[0]["name"], "k1");
  EXPECT_EQ(secrets[0]["dataType"], "seed");
  EXPECT_EQ(secrets[0]["material"], testing::kStoredKey);
}

TEST(GemaltoKeyStore, ErrorsAreMappedAndNamed) {
  Endpoint ep;
  auto opened = Open(ConfigFor(ep));
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  KeyStore& ks = **opened;
  ep.Admin("POST", "/__faults",
           {{"kind", "error"}, {"status", 403}, {"code", 10}, {"codeDesc", "NCERRDenied"}});
  Status s = ks.Create("k", "v", kNoDeadline);
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_EQ(s.message(), "gemalto: failed to create key 'k': \"NCERRDenied\" (10)");
  ep.Admin("POST", "/__faults",
           {{"kind", "error"}, {"status", 403}, {"code", 10}, {"codeDesc", "NCERRDenied"}});
  EXPECT_EQ(ks.Get("k", kNoDeadline).status().message(),
            "gemalto: failed to access key \"k\": \"NCERRDenied\" (10)");
  ep.Admin("POST", "/__faults",
           {{"kind", "error"}, {"status", 403}, {"code", 10}, {"codeDesc", "NCERRDenied"}});
  EXPECT_EQ(ks.Delete("k", kNoDeadline).message(),
            "gemalto: failed to delete key \"k\": NCERRDenied (10)");
  ep.Admin("POST", "/__faults", {{"kind", "page"}, {"skip", 3}});
  EXPECT_EQ(ks.List("", 0, kNoDeadline).status().message(),
            "gemalto: failed to list keys: pagination is out-of-sync: tried to skip 0 but "
            "skipped 3");
  // An empty page before `total` ends the walk (upstream looped forever).
  ASSERT_TRUE(ks.Create("a", "v", kNoDeadline).ok());
  ASSERT_TRUE(ks.Create("b", "v", kNoDeadline).ok());
  ep.Admin("POST", "/__faults", {{"kind", "page"}, {"empty", true}});
  auto list = ks.List("", 0, kNoDeadline);
  ASSERT_TRUE(list.ok()) << list.status().message();
  EXPECT_TRUE(list->names.empty());
  // The status probe: any answer is up; a dead server is unreachable.
  EXPECT_TRUE(ks.Status(kNoDeadline).ok());
}

TEST(GemaltoKeyStore, RenewsAtHalfTheLifetimeAndStopsPromptlyOnClose) {
  Endpoint ep({"--duration", "3"});
  auto ks = Open(ConfigFor(ep));
  ASSERT_TRUE(ks.ok()) << ks.status().message();
  // Logins every 1.5 s: the JWT never expires under the calls.
  EXPECT_TRUE(testing::Eventually([&] { return ep.Logins() >= 3; }));
  ASSERT_TRUE((*ks)->Create("after-renewals", "v", kNoDeadline).ok());
  const json log = ep.Admin("GET", "/__admin/requests");
  for (const json& r : log["requests"]) {
    EXPECT_NE(r["status"], 401) << r.dump();
  }
  // A long JWT: Close must not wait for the next renewal.
  ep.Admin("POST", "/__admin/duration", {{"duration", 3600}});
  const int seen = ep.Logins();
  EXPECT_TRUE(testing::Eventually([&] { return ep.Logins() > seen; }));
  const auto start = std::chrono::steady_clock::now();
  (*ks)->Close();
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(10));
}

TEST(GemaltoKeyStore, FailedRenewalsAreRetriedAndRevokedJwtsReplacedAtOnce) {
  Endpoint ep({"--duration", "1"});
  Timing timing;
  timing.relogin_wait = milliseconds(100);
  auto ks = Open(ConfigFor(ep), timing);
  ASSERT_TRUE(ks.ok()) << ks.status().message();
  // Three failed renewals in a row, then the loop logs in again.
  ep.Admin("POST", "/__faults",
           {{"kind", "error"}, {"status", 401}, {"path", "auth/"}, {"count", 3}});
  EXPECT_TRUE(testing::Eventually([&] { return ep.Admin("GET", "/__faults")["rules"].empty(); }));
  const int seen = ep.Logins();
  EXPECT_TRUE(testing::Eventually([&] { return ep.Logins() > seen; }));
  // Every JWT revoked under a long lifetime: the next call re-logs in.
  ep.Admin("POST", "/__admin/duration", {{"duration", 3600}});
  const int before = ep.Logins();
  EXPECT_TRUE(testing::Eventually([&] { return ep.Logins() > before; }));
  ep.Admin("POST", "/__admin/tokens/revoke");
  const Status created = (*ks)->Create("after-revoke", "v", kNoDeadline);
  EXPECT_TRUE(created.ok()) << created.message();
}

TEST(GemaltoKeyStore, DeadServerIsUnreachable) {
  auto ep = std::make_unique<Endpoint>();
  auto ks = Open(ConfigFor(*ep));
  ASSERT_TRUE(ks.ok()) << ks.status().message();
  ep.reset();
  EXPECT_EQ((*ks)->Status(kNoDeadline).status().code(), Code::kUnreachable);
  EXPECT_EQ((*ks)->Get("k", kNoDeadline).status().code(), Code::kUnreachable);
}

}  // namespace
}  // namespace kes::keystore::gemalto
