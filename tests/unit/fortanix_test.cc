// The Fortanix DSM keystore against tools/fortanix-test-endpoint (a child
// process on loopback, proven by tests/integration/test_fortanix_endpoint.py):
// the shared keystore contract, the error mapping of keystores-cloud.md §4,
// a bounded listing over many pages, retries, deadlines and connect
// failures; plus the config section and the response parsers.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "crypto/encoding.h"
#include "endpoint_process.h"
#include "keystore/fortanix/config.h"
#include "keystore/fortanix/fortanix_keystore.h"
#include "keystore/fortanix/response.h"
#include "keystore_contract.h"
#include "net/http_client.h"

namespace kes::keystore::fortanix {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kAppId[] = "00000000-0000-4000-8000-00000000a99e";  // the endpoint's app

class Dsm {
 public:
  explicit Dsm(std::vector<std::string> args = {})
      : proc_(std::string(KES_SOURCE_DIR) + "/tools/fortanix-test-endpoint/server.py",
              WithSecret(std::move(args))) {}

  bool started() const { return proc_.port() != 0; }
  std::string url() const { return proc_.url(); }
  std::string api_key() const { return crypto::Base64Encode(std::string(kAppId) + ":s3cret"); }
  void Stop() { proc_.Stop(); }

  Config MakeConfig() const {
    Config c;
    c.endpoint = url();
    c.api_key = api_key();
    return c;
  }

  // An admin call; the decoded answer (null on failure).
  nlohmann::json Admin(const std::string& method, const std::string& path,
                       const nlohmann::json& doc = nullptr) {
    net::HttpRequest req;
    req.method = method;
    req.url = *net::Url::Parse(url() + path);
    if (!doc.is_null()) req.body = doc.dump();
    auto r = http_.Do(req);
    if (!r.ok() || r->status != 200) return nullptr;
    return nlohmann::json::parse(r->body, nullptr, false);
  }

  // The logged requests for `path` (all when empty).
  std::vector<nlohmann::json> Requests(const std::string& path) {
    std::vector<nlohmann::json> out;
    const nlohmann::json log = Admin("GET", "/__admin/requests");
    for (auto& e : log["requests"]) {
      if (path.empty() || e["path"] == path) out.push_back(e);
    }
    return out;
  }

 private:
  static std::vector<std::string> WithSecret(std::vector<std::string> args) {
    args.insert(args.begin(), {"--api-secret", "s3cret"});
    return args;
  }

  testing::EndpointProcess proc_;
  net::HttpClient http_;
};

std::unique_ptr<KeyStore> MustOpen(const Config& c) {
  auto r = Open(c);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? std::move(r).value() : nullptr;
}

TEST(FortanixKeystore, Contract) {
  Dsm dsm({"--group", "g-2"});
  ASSERT_TRUE(dsm.started());
  Config c = dsm.MakeConfig();
  c.group_id = "g-2";
  c.endpoint = " " + dsm.url() + "/ ";  // spaces and one trailing '/' are trimmed
  auto ks = MustOpen(c);
  ASSERT_NE(ks, nullptr);
  EXPECT_EQ(ks->DisplayName(), "Fortanix SDKMS: " + c.endpoint);
  testing::ExerciseContract(*ks);
  // Stored as upstream does: an exportable OPAQUE object named like the key,
  // in the configured group, holding the stored value.
  nlohmann::json stored;
  const nlohmann::json objects = dsm.Admin("GET", "/__admin/objects");
  for (auto& o : objects["objects"]) {
    if (o["name"] == "my-key2") stored = o;
  }
  EXPECT_EQ(stored["obj_type"], "OPAQUE");
  EXPECT_EQ(stored["group_id"], "g-2");
  EXPECT_EQ(stored["key_ops"], nlohmann::json({"EXPORT", "APPMANAGEABLE"}));
  EXPECT_EQ(stored["value"], crypto::Base64Encode("v2"));
  // Connecting logged a session in and out; every call sent the API key verbatim.
  auto state = dsm.Admin("GET", "/__admin/state");
  EXPECT_EQ(state["sessions_issued"], 1);
  EXPECT_EQ(state["sessions_terminated"], 1);
  for (auto& e : dsm.Requests("")) {
    const std::string path = e["path"];
    if (path.starts_with("/crypto/")) EXPECT_EQ(e["authorization"], "Basic " + dsm.api_key());
  }
  auto imports = dsm.Requests("/crypto/v1/keys");
  ASSERT_FALSE(imports.empty());
}

// A started endpoint and a keystore connected to it.
class FortanixKeystoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dsm.started());
    ks = MustOpen(dsm.MakeConfig());
    ASSERT_NE(ks, nullptr);
  }

  Dsm dsm;
  std::unique_ptr<KeyStore> ks;
};

TEST_F(FortanixKeystoreTest, GroupIdOmittedWhenEmpty) {
  ASSERT_TRUE(ks->Create("k", "v", kNoDeadline).ok());
  for (auto& e : dsm.Requests("/crypto/v1/keys")) {
    if (e["method"] == "PUT") {
      EXPECT_FALSE(e["body"].contains("group_id"));
      EXPECT_EQ(e["body"]["enabled"], true);
      EXPECT_EQ(e["content_type"], "application/json");
    }
  }
}

TEST_F(FortanixKeystoreTest, ListingPagesPastOnePageAndEnds) {
  std::vector<std::string> want;
  for (int i = 0; i < 2 * kListPage + 50; ++i) {
    char name[16];
    std::snprintf(name, sizeof(name), "key-%04d", i);
    want.emplace_back(name);
    ASSERT_TRUE(ks->Create(name, "v", kNoDeadline).ok());
  }
  ASSERT_TRUE(ks->Create("a b/c?d", "v", kNoDeadline).ok());  // `start` is URL-escaped
  want.insert(want.begin(), "a b/c?d");
  dsm.Admin("DELETE", "/__admin/requests");
  auto list = ks->List("", 0, kNoDeadline);
  ASSERT_TRUE(list.ok()) << list.status().message();
  EXPECT_EQ(list->names, want);
  auto pages = dsm.Requests("/crypto/v1/keys");
  ASSERT_EQ(pages.size(), 3u);
  EXPECT_EQ(pages[0]["query"], nlohmann::json({{"sort", "name:asc"}, {"limit", "100"}}));
  EXPECT_EQ(pages[1]["query"]["start"], want[99]);  // the last name of page 1
  auto some = ks->List("key-01", 0, kNoDeadline);
  ASSERT_TRUE(some.ok());
  EXPECT_EQ(some->names.size(), 100u);

  // A server that ignores `start` (what upstream's loop relied on never
  // happening) ends the listing with an error instead of looping forever.
  dsm.Admin("POST", "/__admin/quirks", {{"ignore_start", true}});
  auto stuck = ks->List("", 0, DeadlineIn(seconds(60)));
  ASSERT_FALSE(stuck.ok());
  EXPECT_EQ(stuck.status().message(),
            "fortanix: failed to list keys: the listing does not advance");
  // And a listing error is an error, not an empty list.
  dsm.Admin("POST", "/__admin/quirks", {{"ignore_start", false}});
  dsm.Admin("POST", "/__faults",
            {{"kind", "error"}, {"status", 403}, {"message", "denied"}, {"method", "GET"}});
  auto denied = ks->List("", 0, kNoDeadline);
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.status().message(), "fortanix: failed to list keys: denied");
}

TEST_F(FortanixKeystoreTest, ErrorMappingUsesTheExactMessages) {
  ASSERT_TRUE(ks->Create("k", "v", kNoDeadline).ok());
  // A 409 with another text (e.g. the name exists in a group the app cannot
  // see) is a failure, not KeyExists.
  dsm.Admin("POST", "/__faults", {{"kind", "error"}, {"status", 409}, {"message", "conflict"}});
  EXPECT_EQ(ks->Create("x", "v", kNoDeadline).message(),
            "fortanix: failed to create key 'x': conflict");
  // JSON error bodies are read through `message`.
  dsm.Admin(
      "POST", "/__faults",
      {{"kind", "error"}, {"status", 409}, {"json", true}, {"message", "sobject already exists"}});
  EXPECT_EQ(ks->Create("x", "v", kNoDeadline), Status::KeyExists());
  dsm.Admin("POST", "/__faults",
            {{"kind", "error"}, {"status", 404}, {"message", "sobject does not exist "}});
  auto get = ks->Get("k", kNoDeadline);
  EXPECT_EQ(get.status().code(), Code::kUnavailable);
  EXPECT_EQ(get.status().message(), "fortanix: failed to fetch 'k': sobject does not exist ");
  dsm.Admin("POST", "/__faults", {{"kind", "error"}, {"status", 400}, {"body", false}});
  EXPECT_EQ(ks->Delete("k", kNoDeadline).message(),
            "fortanix: failed to delete 'k': HTTP status 400");
  EXPECT_EQ(ks->Delete("missing", kNoDeadline), Status::KeyNotFound());

  dsm.Admin("POST", "/__admin/objects/enabled", {{"name", "k"}, {"enabled", false}});
  EXPECT_EQ(ks->Get("k", kNoDeadline).status().message(),
            "fortanix: failed to fetch 'k': key has been disabled and cannot be used until "
            "enabled again");
  // A revoked API key fails later calls (the key is only proven at connect).
  dsm.Admin("POST", "/__admin/api-key", {{"revoked", true}});
  EXPECT_EQ(ks->Get("k", kNoDeadline).status().message(),
            "fortanix: failed to fetch 'k': Invalid API key");
}

TEST_F(FortanixKeystoreTest, ServerErrorsAreRetriedDeadlinesHonouredAndDownIsUnreachable) {
  ASSERT_TRUE(ks->Create("k", "v", kNoDeadline).ok());
  dsm.Admin("POST", "/__faults", {{"kind", "error"}, {"status", 503}, {"count", 2}});
  EXPECT_EQ(*ks->Get("k", kNoDeadline), "v");  // two re-sends
  dsm.Admin("POST", "/__faults", {{"kind", "drop"}, {"count", 1}});
  EXPECT_EQ(*ks->Get("k", kNoDeadline), "v");  // a dropped connection is temporary
  dsm.Admin("POST", "/__faults", {{"kind", "error"}, {"status", 500}, {"count", 3}});
  EXPECT_EQ(ks->Get("k", kNoDeadline).status().message(),
            "fortanix: failed to fetch 'k': internal error");

  // A slow answer gives the call back by its deadline (generous bound).
  dsm.Admin("POST", "/__faults", {{"kind", "latency"}, {"delay_ms", 20000}});
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(ks->Get("k", DeadlineIn(milliseconds(500))).ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(15));

  EXPECT_TRUE(ks->Status(DeadlineIn(seconds(30))).ok());
  dsm.Stop();
  auto st = ks->Status(DeadlineIn(seconds(30)));
  EXPECT_EQ(st.status().code(), Code::kUnreachable);
  EXPECT_EQ(ks->Get("k", DeadlineIn(seconds(30))).status().code(), Code::kUnreachable);
}

TEST(FortanixKeystore, ConnectFailuresFailStartUp) {
  Dsm dsm;
  ASSERT_TRUE(dsm.started());
  Config c = dsm.MakeConfig();
  c.api_key = crypto::Base64Encode(std::string(kAppId) + ":wrong");
  auto r = Open(c);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "fortanix: failed to authenticate to '" + dsm.url() + "': Invalid API key");
  dsm.Admin("POST", "/__admin/health", {{"status", 418}});
  r = Open(dsm.MakeConfig());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "fortanix: failed to connect to '" + dsm.url() + "': HTTP status 418");
  dsm.Admin("POST", "/__admin/health", {{"status", 204}});
  EXPECT_TRUE(Open(dsm.MakeConfig()).ok());
  dsm.Stop();
  r = Open(dsm.MakeConfig());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnreachable);
  EXPECT_TRUE(
      r.status().message().starts_with("fortanix: failed to connect to '" + dsm.url() + "': "));
}

TEST(FortanixConfig, DecodesUpstreamShape) {
  auto c = config::LoadConfigText(
      "admin:\n  identity: disabled\ntls:\n  key: ./server.key\n  cert: ./server.cert\n"
      "keystore:\n  fortanix:\n    sdkms:\n      endpoint: https://sdkms.example\n"
      "      group_id: 5a3f\n      credentials:\n        key: a2V5\n      tls:\n        ca: /x\n");
  ASSERT_TRUE(c.ok()) << c.status().message();
  auto* f = dynamic_cast<const Config*>(c->keystore.get());
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->Kind(), "fortanix.sdkms");
  EXPECT_EQ(f->endpoint, "https://sdkms.example");
  EXPECT_EQ(f->group_id, "5a3f");
  EXPECT_EQ(f->api_key, "a2V5");
  EXPECT_EQ(f->tls_ca, "/x");
  // A CA path that is not a PEM certificate fails start-up.
  Config bad_ca = *f;
  bad_ca.endpoint = "https://127.0.0.1:1";
  bad_ca.tls_ca = std::string(KES_SOURCE_DIR) + "/CMakeLists.txt";
  auto r = bad_ca.Connect();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("does not contain a valid X.509 PEM-encoded certificate"),
            std::string::npos)
      << r.status().message();
}

TEST(FortanixResponse, ParsersAcceptAnyBytes) {
  for (std::string_view junk : {"", "null", "[]", "{}", "{\"kid\":1}", "[{\"name\":2}]", "\xff{",
                                "{\"access_token\":\"\"}", "[1]", "{\"name\":\"x\"}"}) {
    EXPECT_FALSE(ParseSessionToken(junk).ok()) << junk;
    EXPECT_FALSE(ParseSobject(junk).ok()) << junk;
    if (junk != "[]") {
      EXPECT_FALSE(ParseNames(junk).ok()) << junk;
    }
  }
  EXPECT_EQ(*ParseSessionToken(R"({"token_type":"Bearer","access_token":"t"})"), "t");
  auto s = ParseSobject(R"({"kid":"k1","name":"n","enabled":true,"value":"dg=="})");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->kid, "k1");
  EXPECT_TRUE(s->enabled);
  EXPECT_EQ(s->value, "dg==");
  EXPECT_FALSE(ParseSobject(R"({"kid":"k1","enabled":"yes"})")->enabled);
  EXPECT_EQ(*ParseNames(R"([{"name":"b","kid":"1"},{"name":"a"}])"),
            (std::vector<std::string>{"b", "a"}));

  net::HttpResponse resp;
  resp.body = "sobject does not exist";
  EXPECT_EQ(ErrorMessage(resp), "sobject does not exist");
  resp.headers = {{"content-type", "application/json"}};
  resp.body = R"({"message":"m","code":"X"})";
  EXPECT_EQ(ErrorMessage(resp), "m");
  resp.body = "not json";
  EXPECT_EQ(ErrorMessage(resp), "not json");
}

}  // namespace
}  // namespace kes::keystore::fortanix
