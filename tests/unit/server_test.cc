// Unit tests of the server's pure parts: Go-compatible JSON, ServeMux
// routing and redirects, the Prometheus float format and slog lines.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>
#include <cctype>
#include <cstdio>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "keystore/cache.h"
#include "server/connection_slots.h"
#include "server/handlers.h"
#include "server/json.h"
#include "server/logs.h"
#include "server/metrics.h"
#include "server/router.h"

namespace kes::server {
namespace {

std::string Quote(std::string_view s) {
  std::string out;
  AppendJsonString(out, s);
  return out;
}

TEST(ServerJson, EscapesLikeGo) {
  EXPECT_EQ(Quote("a<b>&c"), R"("a\u003cb\u003e\u0026c")");
  EXPECT_EQ(Quote("q\"\\\n\t\r"), R"("q\"\\\n\t\r")");
  EXPECT_EQ(Quote(std::string("\x01", 1)), R"("\u0001")");
  EXPECT_EQ(Quote("\xe2\x80\xa8"), R"("\u2028")");
  EXPECT_EQ(Quote("\xff"), R"("\ufffd")");
  EXPECT_EQ(Quote("\xce\x95macs"), "\"\xce\x95macs\"");
}

TEST(ServerJson, WriterShapes) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject().Key("names").BeginArray().String("a").String("b").EndArray();
  w.Key("empty").BeginObject().EndObject().Key("n").Int(-3).Key("t").Bool(true);
  w.Key("x").Null().EndObject();
  EXPECT_EQ(out, R"({"names":["a","b"],"empty":{},"n":-3,"t":true,"x":null})");
}

std::optional<JsonFields> Decode(std::string_view body) {
  static constexpr std::string_view kNames[] = {"plaintext", "context"};
  return DecodeJsonFields(body, kNames);
}

// DecodeJsonFields scans flat objects of plain strings itself; on every input
// it must agree with the library-only decoder.
TEST(ServerJson, FastPathAgreesWithTheLibrary) {
  static constexpr std::string_view kNames[] = {"ciphertext", "context"};
  const auto agree = [&](const std::string& body) {
    auto fast = DecodeJsonFields(body, kNames);
    auto slow = detail::DecodeJsonFieldsWithLibrary(body, kNames);
    ASSERT_EQ(fast.has_value(), slow.has_value()) << body;
    if (fast) {
      EXPECT_EQ(fast->values, slow->values) << body;
    }
  };
  for (const char* body : {"",
                           " ",
                           "{}",
                           " {} ",
                           "{",
                           "}",
                           "[]",
                           "null",
                           "\"x\"",
                           R"({"ciphertext":"YQ=="})",
                           R"( { "Ciphertext" : "YQ==" , "CONTEXT":"" } tail)",
                           R"({"ciphertext":"a","ciphertext":"b"})",
                           R"({"ciphertext":"a",})",
                           R"({"ciphertext":"a" "context":"b"})",
                           R"({"ciphertext":1})",
                           R"({"ciphertext":null})",
                           R"({"ciphertext":"a","ciphertext":null})",
                           R"({"ciphertext":"\u0041"})",
                           R"({"cipher\u0074ext":"a"})",
                           "{\"ciphertext\":\"\xc3\xa9\"}",
                           "{\"ciphertext\":\"\xff\"}",
                           "{\"ciphertext\":\"a\tb\"}",
                           R"({"x":{"ciphertext":"a"}})",
                           R"({"x":"y","context":"c"})",
                           R"({"ciphertext":"a"}})",
                           R"({"ciphertext":"a)"}) {
    agree(body);
  }
  // Random flat objects (the fast path's shape, with duplicates and case
  // changes) and random token soup (mostly the library's).
  std::mt19937 rng(20261129);
  const std::vector<std::string> keys = {"\"ciphertext\"", "\"CipherText\"", "\"context\"",
                                         "\"other\"",      "\"\"",           "\"contexts\""};
  const std::vector<std::string> values = {"\"YQ==\"", "\"\"",        "\"a b\"", "null",      "1",
                                           "[]",       "\"\\u00e9\"", "{}",      "\"x\\\"y\""};
  const std::vector<std::string> soup = {
      "{",     "}",    "[",    "]",      ":",    ",",           " ", "\n", "\"ciphertext\"",
      "\"v\"", "null", "true", "-1.5e3", "\"\\", "\"\xe2\x82\""};
  const auto pick = [&](const std::vector<std::string>& v) { return v[rng() % v.size()]; };
  for (int i = 0; i < 5000; ++i) {
    std::string body = "{";
    const int members = static_cast<int>(rng() % 5);
    for (int m = 0; m < members; ++m) {
      if (m > 0) body += rng() % 8 == 0 ? " , " : ",";
      body += pick(keys) + (rng() % 4 == 0 ? " : " : ":") + pick(values);
    }
    body += rng() % 10 == 0 ? "" : "}";
    agree(body);
    std::string noise;
    const int tokens = static_cast<int>(rng() % 12);
    for (int t = 0; t < tokens; ++t) noise += pick(soup);
    agree(noise);
  }
}

TEST(ServerJson, DecodesLeniently) {
  auto f = Decode(R"({"Plaintext":"aGk=","CONTEXT":"eA==","other":[1,{"a":2}]})");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->values[0], "aGk=");
  EXPECT_EQ(f->values[1], "eA==");

  f = Decode(R"({"plaintext":"a","plaintext":"b"})");  // last duplicate wins
  ASSERT_TRUE(f);
  EXPECT_EQ(f->values[0], "b");

  f = Decode(R"({"plaintext":null})");
  ASSERT_TRUE(f);
  EXPECT_FALSE(f->values[0]);

  f = Decode(R"({"plaintext":"x"} trailing garbage {)");  // only the first value
  ASSERT_TRUE(f);
  EXPECT_EQ(f->values[0], "x");

  EXPECT_TRUE(Decode("null"));
  EXPECT_TRUE(Decode("  {}  "));
}

// Go's decoder neither skips a byte order mark nor nests deeper than 10000.
TEST(ServerJson, RejectsAByteOrderMarkAndNestingPastGosLimit) {
  EXPECT_FALSE(Decode("\xEF\xBB\xBF{\"plaintext\":\"aGk=\"}"));
  EXPECT_TRUE(Decode("{\"plaintext\":\"aGk=\"}"));
  auto nested = [](int levels) {
    return "{\"other\":" + std::string(levels - 1, '[') + std::string(levels - 1, ']') + "}";
  };
  EXPECT_TRUE(Decode(nested(10000)));
  EXPECT_FALSE(Decode(nested(10001)));
}

TEST(ServerJson, RejectsWhatGoRejects) {
  EXPECT_FALSE(Decode(""));
  EXPECT_FALSE(Decode("{"));
  EXPECT_FALSE(Decode(R"({"plaintext":1})"));
  EXPECT_FALSE(Decode(R"({"plaintext":{}})"));
  EXPECT_FALSE(Decode(R"([])"));
  EXPECT_FALSE(Decode(R"("str")"));
  EXPECT_FALSE(Decode(R"({"plaintext":"a",})"));
}

TEST(ServerRouter, TableMatchesSpec) {
  // Upstream's 22, the bulk decrypt route (unlisted) and kes-cpp's four
  // key-version routes (rotation.md §6.7).
  EXPECT_EQ(Routes().size(), 27u);
  EXPECT_EQ(
      std::count_if(Routes().begin(), Routes().end(), [](const Route& r) { return r.listed; }), 26);
  EXPECT_EQ(FindRouteByPath("/v1/key/rotate/")->max_body, 0u);
  const Route* r = FindRouteByPath("/v1/key/import/");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->method, "PUT");
  EXPECT_EQ(r->max_body, 1000000u);
  EXPECT_EQ(r->timeout.count(), 15);
  EXPECT_EQ(FindRouteByPath("/v1/log/audit")->timeout.count(), 0);
  EXPECT_EQ(FindRouteByPath("/version")->auth, AuthKind::kOpen);
  EXPECT_EQ(FindRouteByPath("/v1/identity/self/describe")->auth, AuthKind::kIdentifyOnly);
  EXPECT_EQ(FindRouteByPath("/v1/key/create"), nullptr);
}

TEST(ServerRouter, MatchesAndDecodes) {
  auto r = ResolveTarget("/v1/key/create/my-key");
  ASSERT_EQ(r.kind, Resolution::Kind::kMatch);
  EXPECT_EQ(r.route->id, RouteId::kKeyCreate);
  EXPECT_EQ(r.resource, "my-key");

  r = ResolveTarget("/v1/key/list/my%2A?x=1");
  ASSERT_EQ(r.kind, Resolution::Kind::kMatch);
  EXPECT_EQ(r.resource, "my*");
  EXPECT_EQ(r.path, "/v1/key/list/my*");

  r = ResolveTarget("/v1/key/create/a/b");
  ASSERT_EQ(r.kind, Resolution::Kind::kMatch);
  EXPECT_EQ(r.resource, "a/b");

  r = ResolveTarget("/v1/key/list/");
  ASSERT_EQ(r.kind, Resolution::Kind::kMatch);
  EXPECT_EQ(r.resource, "");

  EXPECT_EQ(ResolveTarget("/v1/status").route->id, RouteId::kStatus);
  EXPECT_EQ(ResolveTarget("/v1/identity/self/describe").route->id, RouteId::kSelfDescribe);
}

// Paths without '%' are matched by plain comparison with the patterns; the
// same path with one unreserved character percent-encoded goes through the
// per-segment decoder. Both must find the same route, resource and path.
TEST(ServerRouter, PlainAndEscapedSpellingsResolveAlike) {
  const std::vector<std::string> prefixes = {
      "/version",          "/v1/status",       "/v1/status/",
      "/v1/key/create/",   "/v1/key/create",   "/v1/key/list/",
      "/v1/key/generate/", "/v1/key/decrypt/", "/v1/identity/self/describe",
      "/v1/log/audit",     "/v1/policy/read/", "/v1/identity/list/",
      "/v1/keys/",         "/v2/key/create/",  "/v1/metrics/x"};
  const std::vector<std::string> names = {"", "k", "my-key", "a/b", "x.y", "A_1"};
  std::mt19937 rng(7);
  for (const auto& prefix : prefixes) {
    for (const auto& name : names) {
      const std::string plain = prefix + name;
      // Percent-encode one letter or digit somewhere after the leading '/'.
      std::vector<size_t> spots;
      for (size_t i = 1; i < plain.size(); ++i) {
        if (std::isalnum(static_cast<unsigned char>(plain[i]))) spots.push_back(i);
      }
      if (spots.empty()) continue;
      const size_t at = spots[rng() % spots.size()];
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", static_cast<unsigned char>(plain[at]));
      const std::string escaped = plain.substr(0, at) + hex + plain.substr(at + 1);
      const Resolution a = ResolveTarget(plain), b = ResolveTarget(escaped);
      ASSERT_EQ(a.kind, b.kind) << plain << " vs " << escaped;
      EXPECT_EQ(a.route, b.route) << plain << " vs " << escaped;
      if (a.kind == Resolution::Kind::kMatch) {
        EXPECT_EQ(a.resource, b.resource) << plain;
        EXPECT_EQ(a.path, b.path) << plain;
      }
    }
  }
}

TEST(ServerRouter, NotFound) {
  EXPECT_EQ(ResolveTarget("/v1/nope").kind, Resolution::Kind::kNotFound);
  EXPECT_EQ(ResolveTarget("/version/").kind, Resolution::Kind::kNotFound);
  EXPECT_EQ(ResolveTarget("/v1/status/x").kind, Resolution::Kind::kNotFound);
  EXPECT_EQ(ResolveTarget("/").kind, Resolution::Kind::kNotFound);
  EXPECT_EQ(ResolveTarget("/v1/key%2Fcreate/x").kind, Resolution::Kind::kNotFound);
}

TEST(ServerRouter, Redirects) {
  auto r = ResolveTarget("/v1/key/list");
  ASSERT_EQ(r.kind, Resolution::Kind::kRedirect);
  EXPECT_EQ(r.location, "/v1/key/list/");

  r = ResolveTarget("/v1/key/list?a=b");
  ASSERT_EQ(r.kind, Resolution::Kind::kRedirect);
  EXPECT_EQ(r.location, "/v1/key/list/?a=b");

  r = ResolveTarget("/v1//key/create/x");
  ASSERT_EQ(r.kind, Resolution::Kind::kRedirect);
  EXPECT_EQ(r.location, "/v1/key/create/x");

  r = ResolveTarget("/v1/key/create/../delete/x");
  ASSERT_EQ(r.kind, Resolution::Kind::kRedirect);
  EXPECT_EQ(r.location, "/v1/key/delete/x");

  r = ResolveTarget("/v1/./status");
  ASSERT_EQ(r.kind, Resolution::Kind::kRedirect);
  EXPECT_EQ(r.location, "/v1/status");
}

TEST(ServerRouter, EncodedTraversalIsNotCleaned) {
  // Cleaning works on the escaped path: %2E%2E stays a literal resource.
  auto r = ResolveTarget("/v1/key/create/%2E%2E");
  ASSERT_EQ(r.kind, Resolution::Kind::kMatch);
  EXPECT_EQ(r.resource, "..");
}

TEST(ServerRouter, BadEscapes) {
  EXPECT_EQ(ResolveTarget("/v1/key/create/%zz").kind, Resolution::Kind::kBadRequest);
  EXPECT_EQ(ResolveTarget("/v1/key/create/%2").kind, Resolution::Kind::kBadRequest);
  EXPECT_EQ(ResolveTarget("v1/status").kind, Resolution::Kind::kBadRequest);
}

TEST(ServerRouter, CleanPathIsGoPathClean) {
  EXPECT_EQ(CleanPath("/a/b/../c"), "/a/c");
  EXPECT_EQ(CleanPath("/../a"), "/a");
  EXPECT_EQ(CleanPath("//a//b/"), "/a/b");
  EXPECT_EQ(CleanPath("/"), "/");
  EXPECT_EQ(CleanPath(""), ".");
}

TEST(ServerMetrics, FloatsLikeGo) {
  EXPECT_EQ(FormatPromFloat(0), "0");
  EXPECT_EQ(FormatPromFloat(13), "13");
  EXPECT_EQ(FormatPromFloat(557056), "557056");
  EXPECT_EQ(FormatPromFloat(3841344), "3.841344e+06");
  EXPECT_EQ(FormatPromFloat(27.43), "27.43");
  EXPECT_EQ(FormatPromFloat(0.01), "0.01");
  EXPECT_EQ(FormatPromFloat(1.5), "1.5");
  EXPECT_EQ(FormatPromFloat(0.00001), "1e-05");
}

TEST(ServerMetrics, ExpositionOmitsEmptyFamilies) {
  Metrics m;
  std::string text = m.Exposition({});
  EXPECT_EQ(text.find("kes_http_request_success"), std::string::npos);
  EXPECT_EQ(text.find("kes_http_response_time"), std::string::npos);
  EXPECT_NE(text.find("kes_http_request_active 0\n"), std::string::npos);

  m.RequestStarted();
  m.RequestFinished(200, std::chrono::milliseconds(2));
  m.RequestStarted();
  m.RequestFinished(404, std::chrono::milliseconds(20));
  text = m.Exposition({});
  EXPECT_NE(text.find("kes_http_request_success{code=\"200\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("kes_http_request_error{code=\"404\"} 1\n"), std::string::npos);
  EXPECT_EQ(text.find("kes_http_request_failure"), std::string::npos);
  EXPECT_NE(text.find("kes_http_response_time_bucket{le=\"0.01\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("kes_http_response_time_bucket{le=\"0.05\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("kes_http_response_time_bucket{le=\"+Inf\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("kes_http_response_time_count 2\n"), std::string::npos);
}

TEST(ServerLogs, SlogTextLine) {
  std::string line = FormatSlogLine(0, "secret key 'my-key' created",
                                    {{"req.path", "/v1/key/create/my-key"}, {"req.ip", ""}});
  EXPECT_NE(line.find(" level=INFO msg=\"secret key 'my-key' created\" "
                      "req.path=/v1/key/create/my-key req.ip=\"\""),
            std::string::npos)
      << line;
  EXPECT_EQ(line.rfind("time=", 0), 0u);
}

TEST(ServerLogs, SubscribersGetEventsUntilUnsubscribed) {
  Logs logs;
  logs.SetLevels(100, false);  // nothing to the console
  int wakes = 0;
  auto sub = logs.Subscribe(LogStream::kAudit, [&] { ++wakes; });
  Logs::AuditEvent e;
  e.message = "secret key 'k' created";
  e.path = "/v1/key/create/k";
  e.identity = "abc";
  logs.Audit(e);
  std::vector<std::string> lines;
  sub->Drain(&lines);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find(R"("request":{"path":"/v1/key/create/k","identity":"abc"})"),
            std::string::npos)
      << lines[0];
  EXPECT_NE(lines[0].find(R"("response":{"code":200,"time":0})"), std::string::npos);
  EXPECT_EQ(wakes, 1);
  logs.Unsubscribe(LogStream::kAudit, sub);
  logs.Audit(e);
  sub->Drain(&lines);
  EXPECT_TRUE(lines.empty());
  EXPECT_EQ(logs.audit_events(), 2u);
}

// A backend that throws from every call, as a library inside one may.
class ThrowingStore : public keystore::KeyStore {
 public:
  std::string DisplayName() const override { return "Throwing"; }
  Result<keystore::KeyStoreState> Status(Deadline) override { throw std::runtime_error("status"); }
  kes::Status Create(std::string_view, std::string_view, Deadline) override {
    throw std::runtime_error("create");
  }
  Result<std::string> Get(std::string_view, Deadline) override { throw std::runtime_error("get"); }
  kes::Status Delete(std::string_view, Deadline) override { throw std::runtime_error("delete"); }
  Result<keystore::ListPage> List(std::string_view, int, Deadline) override {
    throw std::logic_error("list");
  }
};

// An exception on the worker pool used to reach Boost's thread_pool and
// std::terminate the server; it is a 502 like any other backend failure.
TEST(ServerHandlers, AKeystoreExceptionIsAnErrorResponse) {
  boost::asio::thread_pool workers(1);
  Services sv;
  sv.workers = &workers;
  sv.logs.SetLevels(100, false);
  State st;
  keystore::CacheOptions opts;
  opts.expiry_any = opts.expiry_unused = opts.probe_interval = std::chrono::nanoseconds(0);
  st.cache = std::make_shared<keystore::KeyCache>(std::make_unique<ThrowingStore>(), opts);
  for (const char* target :
       {"/v1/key/describe/k", "/v1/key/describe/k", "/v1/key/list/*", "/v1/key/delete/k",
        "/v1/status"}) {  // twice: the cache's flight for "k" was left the first time
    Resolution res = ResolveTarget(target);
    ASSERT_EQ(res.kind, Resolution::Kind::kMatch) << target;
    Request req;
    req.route = res.route;
    req.method = res.route->method;
    req.path = res.path;
    req.resource = res.resource;
    req.received = std::chrono::steady_clock::now();
    boost::asio::io_context io;
    auto f = boost::asio::co_spawn(io, Handle(req, st, sv), boost::asio::use_future);
    io.run();
    const Response r = f.get();
    if (std::string_view(target) == "/v1/status") {
      EXPECT_EQ(r.status, 200u) << r.body;  // reports the keystore as unavailable
    } else {
      EXPECT_EQ(r.status, 502u) << target << ": " << r.body;
    }
  }
}

// A full server sheds unknown identities first, then the longest-idle
// trusted connection, never a trusted one mid-request, and refuses only
// when nothing may be shed.
TEST(ServerConnectionSlots, ShedsUnknownThenLongestIdleNeverBusyTrusted) {
  ConnectionSlots slots(3);
  std::vector<int> shed;
  auto acquire = [&](int id) { return slots.Acquire([&shed, id] { shed.push_back(id); }); };
  auto busy = acquire(1);
  ConnectionSlots::Identified(*busy, true);
  ConnectionSlots::Busy(*busy);
  auto idle_old = acquire(2);
  ConnectionSlots::Identified(*idle_old, true);
  ConnectionSlots::Idle(*idle_old);
  auto unknown = acquire(3);
  ConnectionSlots::Identified(*unknown, false);
  ConnectionSlots::Busy(*unknown);  // even mid-request
  EXPECT_TRUE(shed.empty());

  auto a = acquire(4);  // full: the unknown one goes first
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(shed, std::vector<int>{3});
  ConnectionSlots::Identified(*a, true);
  ConnectionSlots::Busy(*a);
  unknown.reset();  // the shed connection closes
  EXPECT_EQ(slots.live(), 3);

  auto b = acquire(5);  // then the idle trusted one
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(shed, (std::vector<int>{3, 2}));
  ConnectionSlots::Identified(*b, true);
  ConnectionSlots::Busy(*b);
  idle_old.reset();

  EXPECT_EQ(acquire(6), nullptr);  // everything is trusted and busy: refused
  EXPECT_EQ(shed.size(), 2u);
  ConnectionSlots::Idle(*busy);
  EXPECT_NE(acquire(7), nullptr);
  EXPECT_EQ(shed, (std::vector<int>{3, 2, 1}));
}

}  // namespace
}  // namespace kes::server
