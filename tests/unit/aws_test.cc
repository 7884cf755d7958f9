// Unit tests of the aws module: the SigV4 signer against every vector in the
// spec folder (read at run time), credential file parsing, the retry policy
// and error-code dispatch.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "aws/credential_cache.h"
#include "aws/credential_providers.h"
#include "aws/error.h"
#include "aws/ini_file.h"
#include "aws/json_client.h"
#include "aws/retry.h"
#include "aws/sigv4.h"
#include "crypto/encoding.h"
#include "keystore/aws/error_mapping.h"
#include "loopback_http.h"

namespace kes::aws {
namespace {

using crypto::Base64Encode;

namespace fs = std::filesystem;

fs::path SpecDir() {
  const char* env = std::getenv("KES_SPEC_DIR");
  return env && *env ? fs::path(env) : fs::path(KES_SPEC_DIR);
}
fs::path SigV4Dir() { return SpecDir() / "vectors" / "sigv4"; }

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Clock::time_point VectorTime() {
  // 2015-08-30T12:36:00Z
  return Clock::from_time_t(1440938160);
}

Clock::time_point ParseAmzDate(std::string_view d) {
  std::tm tm{};
  tm.tm_year = std::stoi(std::string(d.substr(0, 4))) - 1900;
  tm.tm_mon = std::stoi(std::string(d.substr(4, 2))) - 1;
  tm.tm_mday = std::stoi(std::string(d.substr(6, 2)));
  tm.tm_hour = std::stoi(std::string(d.substr(9, 2)));
  tm.tm_min = std::stoi(std::string(d.substr(11, 2)));
  tm.tm_sec = std::stoi(std::string(d.substr(13, 2)));
  return Clock::from_time_t(timegm(&tm));
}

Clock::time_point ParseIso(std::string_view d) {  // 2015-08-30T12:36:00Z
  std::string compact;
  for (char c : d) {
    if (c != '-' && c != ':') compact.push_back(c);
  }
  return ParseAmzDate(compact);
}

// Parses a raw request file as the suite README describes: request line,
// headers (continuation lines joined with a space), blank line, body.
RequestToSign ParseRawRequest(const std::string& raw) {
  RequestToSign r;
  std::vector<std::string> lines;
  size_t pos = 0;
  size_t body_at = std::string::npos;
  while (pos <= raw.size()) {
    size_t nl = raw.find('\n', pos);
    std::string line = raw.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    if (line.empty() && !lines.empty()) {
      body_at = nl == std::string::npos ? raw.size() : nl + 1;
      break;
    }
    lines.push_back(line);
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  const std::string& first = lines.at(0);
  size_t sp1 = first.find(' ');
  size_t sp2 = first.rfind(' ');
  r.method = first.substr(0, sp1);
  std::string target = first.substr(sp1 + 1, sp2 - sp1 - 1);
  size_t q = target.find('?');
  r.path = target.substr(0, q);
  if (q != std::string::npos) r.query = target.substr(q + 1);
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string& l = lines[i];
    if (!l.empty() && (l[0] == ' ' || l[0] == '\t')) {
      r.headers.back().second += " " + l;
      continue;
    }
    size_t colon = l.find(':');
    r.headers.emplace_back(l.substr(0, colon), l.substr(colon + 1));
  }
  static std::string body;  // RequestToSign holds a view
  body = body_at == std::string::npos ? "" : raw.substr(body_at);
  r.body = body;
  return r;
}

std::string TokenFromCreq(const std::string& creq) {
  const std::string key = "\nx-amz-security-token:";
  size_t p = creq.find(key);
  if (p == std::string::npos) return {};
  p += key.size();
  return creq.substr(p, creq.find('\n', p) - p);
}

const Credentials kExampleKeys("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");

TEST(SigV4, ClassicSuiteAllCases) {
  int cases = 0;
  for (const auto& entry : fs::recursive_directory_iterator(SigV4Dir() / "aws4_testsuite")) {
    if (entry.path().extension() != ".req") continue;
    ++cases;
    const fs::path base = entry.path().parent_path() / entry.path().stem();
    const std::string name = entry.path().stem().string();
    SCOPED_TRACE(name);
    std::string raw = ReadFile(entry.path());
    std::string creq = ReadFile(base.string() + ".creq");
    RequestToSign req = ParseRawRequest(raw);
    Credentials creds = kExampleKeys;
    if (name != "post-sts-header-after") creds.session_token = TokenFromCreq(creq);
    SigV4Signer signer({"us-east-1", "service"});
    SignedRequest s = signer.Sign(req, creds, VectorTime());
    EXPECT_EQ(s.canonical_request, creq);
    EXPECT_EQ(s.string_to_sign, ReadFile(base.string() + ".sts"));
    EXPECT_EQ(s.authorization, ReadFile(base.string() + ".authz"));
  }
  EXPECT_EQ(cases, 34);
}

TEST(SigV4, AwsCAuthSuiteAllCases) {
  int cases = 0;
  for (const auto& entry : fs::directory_iterator(SigV4Dir() / "aws-signing-test-suite" / "v4")) {
    if (!fs::exists(entry.path() / "context.json")) continue;
    ++cases;
    SCOPED_TRACE(entry.path().filename().string());
    auto ctx = nlohmann::json::parse(ReadFile(entry.path() / "context.json"));
    RequestToSign req = ParseRawRequest(ReadFile(entry.path() / "request.txt"));
    Credentials creds(ctx["credentials"]["access_key_id"], ctx["credentials"]["secret_access_key"],
                      ctx["credentials"].value("token", ""));
    SigningParams params{ctx["region"], ctx["service"]};
    params.normalize_path = ctx.value("normalize", true);
    params.sign_body = ctx.value("sign_body", false);
    params.omit_session_token = ctx.value("omit_session_token", false);
    SignedRequest s =
        SigV4Signer(params).Sign(req, creds, ParseIso(ctx["timestamp"].get<std::string>()));
    EXPECT_EQ(s.canonical_request, ReadFile(entry.path() / "header-canonical-request.txt"));
    EXPECT_EQ(s.string_to_sign, ReadFile(entry.path() / "header-string-to-sign.txt"));
    EXPECT_EQ(s.signature, ReadFile(entry.path() / "header-signature.txt"));
    // The signed request file carries the final Authorization header.
    std::string signed_req = ReadFile(entry.path() / "header-signed-request.txt");
    EXPECT_NE(signed_req.find("Authorization:" + s.authorization), std::string::npos);
  }
  EXPECT_EQ(cases, 38);
}

TEST(SigV4, SecretsManagerExamples) {
  int cases = 0;
  for (const auto& entry : fs::directory_iterator(SigV4Dir() / "secretsmanager")) {
    if (entry.path().extension() != ".json") continue;
    ++cases;
    SCOPED_TRACE(entry.path().filename().string());
    auto v = nlohmann::json::parse(ReadFile(entry.path()));
    const auto& rq = v["request"];
    RequestToSign req;
    req.method = rq["method"];
    req.path = "/";
    req.headers.emplace_back("Host", rq["host_header"]);
    for (const auto& h : rq["headers"]) req.headers.emplace_back(h[0], h[1]);
    std::string body = rq["body"];
    req.body = body;
    const auto& c = v["credentials"];
    Credentials creds(
        c["access_key_id"], c["secret_access_key"],
        c.value("session_token", nlohmann::json("")).is_null() ? "" : c.value("session_token", ""));
    SignedRequest s = SigV4Signer({v["region"], v["service"]})
                          .Sign(req, creds, ParseIso(v["timestamp"].get<std::string>()));
    const auto& e = v["expected"];
    EXPECT_EQ(Sha256Hex(body), e["payload_sha256"]);
    EXPECT_EQ(s.canonical_request, e["canonical_request"]);
    EXPECT_EQ(s.string_to_sign, e["string_to_sign"]);
    EXPECT_EQ(s.signed_headers, e["signed_headers"]);
    EXPECT_EQ(s.signature, e["signature"]);
    EXPECT_EQ(s.authorization, e["authorization"]);
    for (const auto& added : e["headers_added_by_signer"]) {
      bool found = false;
      for (const auto& [k, val] : s.headers) found |= (k == added[0] && val == added[1]);
      EXPECT_TRUE(found) << added[0];
    }
  }
  EXPECT_EQ(cases, 3);
}

TEST(SigV4, ObservedRequestsFromRealClients) {
  auto doc = nlohmann::json::parse(ReadFile(SigV4Dir() / "observed" / "observed-requests.json"));
  int cases = 0;
  for (const auto& r : doc["requests"]) {
    ++cases;
    SCOPED_TRACE(r["command"].get<std::string>());
    std::string authz, amz_date;
    for (const auto& h : r["headers"]) {
      std::string lower = h[0];
      std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
      if (lower == "authorization") authz = h[1];
      if (lower == "x-amz-date") amz_date = h[1];
    }
    // Sign exactly the headers the client signed (the signer adds the date
    // and the token itself).
    std::string signed_list = authz.substr(authz.find("SignedHeaders=") + 14);
    signed_list = signed_list.substr(0, signed_list.find(','));
    std::vector<std::string> names;
    std::stringstream ss(signed_list);
    for (std::string n; std::getline(ss, n, ';');) names.push_back(n);
    RequestToSign req;
    std::string line = r["request_line"];
    req.method = line.substr(0, line.find(' '));
    req.path = "/";
    for (const auto& h : r["headers"]) {
      std::string lower = h[0];
      std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
      if (lower == "x-amz-date" || lower == "x-amz-security-token") continue;
      if (std::find(names.begin(), names.end(), lower) != names.end())
        req.headers.emplace_back(h[0], h[1]);
    }
    std::string body = r["body"];
    req.body = body;
    Credentials creds(doc["credentials"]["access_key_id"], doc["credentials"]["secret_access_key"],
                      r["session_token"].is_null() ? "" : r["session_token"].get<std::string>());
    std::string scope = authz.substr(authz.find("Credential=") + 11);
    scope = scope.substr(0, scope.find(','));
    std::vector<std::string> parts;
    std::stringstream sc(scope);
    for (std::string p; std::getline(sc, p, '/');) parts.push_back(p);
    ASSERT_EQ(parts.size(), 5u);
    SignedRequest s = SigV4Signer({parts[2], parts[3]}).Sign(req, creds, ParseAmzDate(amz_date));
    EXPECT_EQ(s.canonical_request, r["canonical_request"]);
    EXPECT_EQ(s.string_to_sign, r["string_to_sign"]);
    EXPECT_EQ(s.authorization, authz);
  }
  EXPECT_EQ(cases, 14);
}

TEST(SigV4, Canonicalization) {
  EXPECT_EQ(CanonicalUri("", true), "/");
  EXPECT_EQ(CanonicalUri("//example//", true), "/example/");
  EXPECT_EQ(CanonicalUri("//example//", false), "//example//");
  EXPECT_EQ(CanonicalUri("/a/b/../../..", true), "/");
  EXPECT_EQ(CanonicalUri("/a%2Fb", true), "/a%252Fb");  // non-S3: encoded once more
  EXPECT_EQ(CanonicalQuery("b=2&a=2&a=1&c"), "a=1&a=2&b=2&c=");
  EXPECT_EQ(CanonicalQuery("k=a b&x=%2f"), "k=a%20b&x=%2F");
  EXPECT_EQ(UriEncode("a/b ~", false), "a%2Fb%20~");
  EXPECT_EQ(FormatAmzDate(VectorTime()), "20150830T123600Z");
}

TEST(SigV4, NeverSignsHopByHopHeadersAndReplacesStaleAuthorization) {
  RequestToSign req{"POST",
                    "/",
                    "",
                    {{"Host", "h"},
                     {"User-Agent", "x"},
                     {"Authorization", "old"},
                     {"Content-Type", "application/x-amz-json-1.1"}},
                    "{}"};
  SignedRequest s = SigV4Signer({"us-east-1", "kms"}).Sign(req, kExampleKeys, VectorTime());
  EXPECT_EQ(s.signed_headers, "content-type;host;x-amz-date");
  int authz = 0;
  for (const auto& [k, v] : s.headers) authz += (k == "Authorization");
  EXPECT_EQ(authz, 1);
  EXPECT_EQ(s.headers.back().second, s.authorization);
  // The secret never shows up anywhere in what is sent.
  for (const auto& [k, v] : s.headers)
    EXPECT_EQ(v.find(kExampleKeys.secret_access_key), std::string::npos);
}

// ------------------------------------------------------------ credentials

EnvLookup FakeEnv(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) {
    auto it = vars.find(std::string(name));
    return it == vars.end() ? std::string() : it->second;
  };
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/kes-aws-test-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string Write(const std::string& name, const std::string& content) {
    std::string p = (path_ / name).string();
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }
  std::string Path(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

TEST(Credentials, IniParsing) {
  IniFile ini = ParseIni(
      "# comment\n; other\n[default]\naws_access_key_id = AKID\r\n"
      "aws_secret_access_key=se/cr+et==\n\n[profile ci]\nregion = eu-west-1\ns3 =\n"
      "  max_concurrent_requests = 20\nweb_identity_token_file = /t\n[ spaced ]\nk = v # not a "
      "comment\n");
  ASSERT_NE(FindProfile(ini, "default", false), nullptr);
  EXPECT_EQ(FindProfile(ini, "default", false)->at("aws_access_key_id"), "AKID");
  EXPECT_EQ(FindProfile(ini, "default", false)->at("aws_secret_access_key"), "se/cr+et==");
  const IniSection* ci = FindProfile(ini, "ci", true);
  ASSERT_NE(ci, nullptr);
  EXPECT_EQ(ci->at("region"), "eu-west-1");
  EXPECT_EQ(ci->at("web_identity_token_file"), "/t");  // sub-section lines skipped
  EXPECT_EQ(ci->count("max_concurrent_requests"), 0u);
  EXPECT_EQ(FindProfile(ini, "ci", false), nullptr);  // credentials files use bare names
  EXPECT_EQ(FindProfile(ini, "spaced", false)->at("k"), "v # not a comment");
}

TEST(Credentials, EnvironmentProvider) {
  auto p = NewEnvProvider(FakeEnv({{"AWS_ACCESS_KEY_ID", "AKID"},
                                   {"AWS_SECRET_ACCESS_KEY", "SECRET"},
                                   {"AWS_SESSION_TOKEN", "TOKEN"}}));
  auto c = p->Retrieve();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)->access_key_id, "AKID");
  EXPECT_EQ((*c)->secret_access_key, "SECRET");
  EXPECT_EQ((*c)->session_token, "TOKEN");
  EXPECT_FALSE((*c)->expiration.has_value());
  // Legacy names, and half-set variables mean "not configured".
  EXPECT_TRUE(
      NewEnvProvider(FakeEnv({{"AWS_ACCESS_KEY", "A"}, {"AWS_SECRET_KEY", "S"}}))->Retrieve().ok());
  EXPECT_EQ(NewEnvProvider(FakeEnv({{"AWS_ACCESS_KEY_ID", "A"}}))->Retrieve().status().code(),
            Code::kNotFound);
}

TEST(Credentials, SharedFilesWithProfiles) {
  TempDir dir;
  std::string creds =
      dir.Write("credentials",
                "[default]\naws_access_key_id=D\naws_secret_access_key=DS\n"
                "[ci]\naws_access_key_id = C\naws_secret_access_key = CS\naws_session_token = CT\n"
                "[half]\naws_access_key_id = H\n");
  std::string config =
      dir.Write("config", "[profile cfg]\naws_access_key_id = F\naws_secret_access_key = FS\n");
  auto get = [&](std::map<std::string, std::string> extra) {
    extra["AWS_SHARED_CREDENTIALS_FILE"] = creds;
    extra["AWS_CONFIG_FILE"] = config;
    return NewSharedFileProvider(FakeEnv(extra))->Retrieve();
  };
  auto d = get({});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ((*d)->access_key_id, "D");
  auto ci = get({{"AWS_PROFILE", "ci"}});
  ASSERT_TRUE(ci.ok());
  EXPECT_EQ((*ci)->session_token, "CT");
  auto cfg = get({{"AWS_PROFILE", "cfg"}});  // from the config file's "[profile cfg]"
  ASSERT_TRUE(cfg.ok());
  EXPECT_EQ((*cfg)->access_key_id, "F");
  // A configured but broken profile stops the chain; a missing named profile too.
  EXPECT_EQ(get({{"AWS_PROFILE", "half"}}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(get({{"AWS_PROFILE", "nope"}}).status().code(), Code::kInvalidArgument);
  // No files at all: not configured, the chain moves on.
  auto none = NewSharedFileProvider(FakeEnv({{"AWS_SHARED_CREDENTIALS_FILE", dir.Path("missing")},
                                             {"AWS_CONFIG_FILE", dir.Path("missing2")}}))
                  ->Retrieve();
  EXPECT_EQ(none.status().code(), Code::kNotFound);
  // The error message never carries the secret.
  EXPECT_EQ(get({{"AWS_PROFILE", "half"}}).status().message().find("DS"), std::string::npos);
}

TEST(Credentials, ChainOrderAndBrokenSources) {
  TempDir dir;
  std::string creds =
      dir.Write("credentials", "[default]\naws_access_key_id=FILE\naws_secret_access_key=FS\n");
  std::map<std::string, std::string> vars = {{"AWS_SHARED_CREDENTIALS_FILE", creds},
                                             {"AWS_CONFIG_FILE", dir.Path("none")},
                                             {"AWS_EC2_METADATA_DISABLED", "true"}};
  auto chain_for = [&](const std::map<std::string, std::string>& v) {
    auto env = FakeEnv(v);
    auto http = std::make_shared<net::HttpClient>();
    return NewChainProvider({NewEnvProvider(env), NewSharedFileProvider(env),
                             NewWebIdentityProvider(env, "us-east-1", http),
                             NewContainerProvider(env, http), NewImdsProvider(env, http)});
  };
  // File only.
  auto r = chain_for(vars)->Retrieve();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->access_key_id, "FILE");
  // Environment wins over the file.
  auto with_env = vars;
  with_env["AWS_ACCESS_KEY_ID"] = "ENV";
  with_env["AWS_SECRET_ACCESS_KEY"] = "ES";
  EXPECT_EQ((*chain_for(with_env)->Retrieve())->access_key_id, "ENV");
  // Web identity configured without a role: an error, not a fall-through.
  auto no_file = vars;
  no_file["AWS_SHARED_CREDENTIALS_FILE"] = dir.Path("none");
  no_file["AWS_WEB_IDENTITY_TOKEN_FILE"] = dir.Write("token", "jwt");
  auto broken = chain_for(no_file)->Retrieve();
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.status().message().find("role ARN is not set"), std::string::npos);
  // A container URI to a non-loopback plain-http host is refused.
  auto ecs = vars;
  ecs["AWS_SHARED_CREDENTIALS_FILE"] = dir.Path("none");
  ecs["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = "http://evil.example.com/creds";
  auto refused = chain_for(ecs)->Retrieve();
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("refusing plain http"), std::string::npos);
  // Nothing anywhere.
  auto nothing = chain_for({{"AWS_SHARED_CREDENTIALS_FILE", dir.Path("none")},
                            {"AWS_CONFIG_FILE", dir.Path("none")},
                            {"AWS_EC2_METADATA_DISABLED", "true"}})
                     ->Retrieve();
  ASSERT_FALSE(nothing.ok());
  EXPECT_NE(nothing.status().message().find("no valid providers in chain"), std::string::npos);
}

TEST(Credentials, ParseIso8601) {
  auto t = ParseIso8601("2015-08-30T12:36:00Z");
  ASSERT_TRUE(t);
  EXPECT_EQ(*t, VectorTime());
  EXPECT_EQ(*ParseIso8601("2015-08-30T14:36:00.123+02:00"), VectorTime());
  EXPECT_FALSE(ParseIso8601("2015-08-30 12:36:00"));
  EXPECT_FALSE(ParseIso8601("2015-08-30T12:36:00Zjunk"));
  // Found by fuzz_aws_response: a year far from now overflowed the
  // nanosecond conversion (UBSan), and a short offset was read past its end.
  EXPECT_FALSE(ParseIso8601("1013-01-15T09:05:09Z"));
  EXPECT_FALSE(ParseIso8601("9999-01-15T09:05:09Z"));
  EXPECT_FALSE(ParseIso8601("2015-08-30T12:36:00+1:1"));
  EXPECT_EQ(*ParseIso8601("2015-08-30T10:36:00-02:00"), VectorTime());
}

// An inner provider that hands out numbered temporary credentials.
class CountingProvider : public CredentialProvider {
 public:
  explicit CountingProvider(std::function<Clock::time_point()> now, Clock::duration lifetime)
      : now_(std::move(now)), lifetime_(lifetime) {}
  Result<CredentialsPtr> Retrieve() override {
    std::lock_guard lock(mu_);
    if (fail_) return Status::Unavailable("source down");
    ++calls_;
    auto c = std::make_shared<Credentials>("ASIA" + std::to_string(calls_), "s", "t");
    c->expiration = now_() + lifetime_;
    return CredentialsPtr(c);
  }
  std::string Name() const override { return "counting"; }
  int calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }
  void set_fail(bool f) {
    std::lock_guard lock(mu_);
    fail_ = f;
  }

 private:
  std::mutex mu_;
  std::function<Clock::time_point()> now_;
  Clock::duration lifetime_;
  int calls_ = 0;
  bool fail_ = false;
};

TEST(Credentials, CachingProviderRefreshesBeforeExpiry) {
  std::mutex mu;
  Clock::time_point fake = VectorTime();
  auto now = [&] {
    std::lock_guard lock(mu);
    return fake;
  };
  auto advance = [&](Clock::duration d) {
    std::lock_guard lock(mu);
    fake += d;
  };
  auto inner = std::make_shared<CountingProvider>(now, std::chrono::hours(1));
  CachingProvider cache(inner, now);
  auto first = cache.Retrieve();
  ASSERT_TRUE(first.ok());
  EXPECT_EQ((*first)->access_key_id, "ASIA1");
  // Well before the advisory point: cached, no fetch.
  advance(std::chrono::minutes(30));
  EXPECT_EQ((*cache.Retrieve())->access_key_id, "ASIA1");
  EXPECT_EQ(inner->calls(), 1);
  // Inside the advisory window (15 min before expiry): the caller is not
  // stalled; a background refresh follows.
  advance(std::chrono::minutes(20));  // 10 min left
  EXPECT_EQ((*cache.Retrieve())->access_key_id, "ASIA1");
  for (int i = 0; i < 2000 && inner->calls() < 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(inner->calls(), 2);
  EXPECT_EQ((*cache.Retrieve())->access_key_id, "ASIA2");
  // Source down and the set inside the mandatory window but not expired:
  // keep serving it. Once expired: the error surfaces.
  inner->set_fail(true);
  advance(std::chrono::minutes(57));  // 3 min left on ASIA2
  auto still = cache.Retrieve();
  ASSERT_TRUE(still.ok());
  EXPECT_EQ((*still)->access_key_id, "ASIA2");
  advance(std::chrono::minutes(5));
  EXPECT_FALSE(cache.Retrieve().ok());
  // Invalidate forces a fresh fetch.
  inner->set_fail(false);
  EXPECT_EQ((*cache.Retrieve())->access_key_id, "ASIA3");
  cache.Invalidate();
  EXPECT_EQ((*cache.Retrieve())->access_key_id, "ASIA4");
}

// ------------------------------------------------------------ retries and errors

AwsError Err(int status, std::string code, std::string message) {
  AwsError e;
  e.http_status = status;
  e.code = std::move(code);
  e.message = std::move(message);
  return e;
}

TEST(Retry, StandardModeBackoffWithInjectedJitter) {
  double r = 1.0;
  RetryPolicy policy({}, [&] { return r; });
  AwsError throttle = Err(400, "ThrottlingException", "Rate exceeded");
  AwsError fault = Err(500, "InternalServiceError", "");
  AwsError not_found = Err(400, "ResourceNotFoundException", "");
  // Full jitter: uniform(0,1) * min(base * 2^(i-1), 20 s).
  EXPECT_EQ(policy.OnFailure(1, throttle), std::chrono::milliseconds(500));
  EXPECT_EQ(policy.OnFailure(2, throttle), std::chrono::milliseconds(1000));
  EXPECT_EQ(policy.OnFailure(3, throttle), std::nullopt);  // 3 attempts max
  r = 0.5;
  EXPECT_EQ(policy.OnFailure(1, fault), std::chrono::milliseconds(50));
  EXPECT_EQ(policy.OnFailure(1, not_found), std::nullopt);
  AwsError unrecognized = Err(400, "UnrecognizedClientException", "");
  EXPECT_EQ(policy.OnFailure(1, unrecognized), std::nullopt);
  AwsError dropped;
  dropped.transport = true;
  dropped.code = "NetworkError";
  EXPECT_TRUE(policy.OnFailure(1, dropped).has_value());
  AwsError bare503 = Err(503, "Http503", "");
  EXPECT_TRUE(policy.OnFailure(1, bare503).has_value());
  // Cap at 20 s.
  RetryOptions many;
  many.max_attempts = 30;
  RetryPolicy capped(many, [] { return 1.0; });
  EXPECT_EQ(capped.OnFailure(20, throttle), std::chrono::milliseconds(20000));
}

TEST(Retry, TokenBucketStopsRetryStorms) {
  RetryOptions o;
  o.bucket_capacity = 12;
  RetryPolicy policy(o, [] { return 0.0; });
  AwsError fault = Err(500, "InternalServiceError", "");
  AwsError timeout;
  timeout.transport = timeout.timeout = true;
  EXPECT_TRUE(policy.OnFailure(1, fault));   // 12 -> 7
  EXPECT_TRUE(policy.OnFailure(1, fault));   // 7 -> 2
  EXPECT_FALSE(policy.OnFailure(1, fault));  // cannot pay 5
  EXPECT_EQ(policy.available_tokens(), 2);
  policy.OnSuccess(2);  // refunds the last retry's cost
  EXPECT_EQ(policy.available_tokens(), 7);
  policy.OnSuccess(1);
  EXPECT_EQ(policy.available_tokens(), 8);
  EXPECT_FALSE(policy.OnFailure(1, timeout).has_value());  // a timeout costs 10
}

net::HttpResponse Response(int status, std::string body, net::Headers headers = {}) {
  net::HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  return r;
}

TEST(Errors, ParseAndClassify) {
  auto e = ParseErrorResponse(Response(
      400,
      R"({"__type":"ResourceNotFoundException","Message":"Secrets Manager can't find the specified secret."})",
      {{"x-amzn-requestid", "rid"}}));
  EXPECT_EQ(e.code, "ResourceNotFoundException");
  EXPECT_EQ(e.message, "Secrets Manager can't find the specified secret.");
  EXPECT_EQ(e.request_id, "rid");
  // Header wins, namespaces and ":..." suffixes cut, lower-case message.
  e = ParseErrorResponse(
      Response(400, R"({"__type":"x#Other","message":"m"})",
               {{"x-amzn-errortype", "ThrottlingException:http://internal.amazon.com/"}}));
  EXPECT_EQ(e.code, "ThrottlingException");
  EXPECT_EQ(e.message, "m");
  EXPECT_EQ(
      ParseErrorResponse(Response(400, R"({"__type":"com.amazonaws.kms#NotFoundException"})")).code,
      "NotFoundException");
  // Not JSON (a proxy answered): fall back to the status.
  e = ParseErrorResponse(Response(503, "<html>busy</html>"));
  EXPECT_EQ(e.code, "Http503");
  EXPECT_TRUE(IsTransientError(e));
  EXPECT_EQ(CleanErrorCode("aws.protocoltests.restjson#FooError:http://x"), "FooError");
  EXPECT_TRUE(IsThrottlingError(Err(400, "LimitExceededException", "")));
  EXPECT_TRUE(IsClockSkewError(Err(400, "InvalidSignatureException",
                                   "Signature expired: 20251105T220858Z is now earlier than ...")));
  EXPECT_FALSE(IsClockSkewError(
      Err(400, "InvalidSignatureException", "The request signature we calculated does not match")));
  EXPECT_TRUE(ParseHttpDate("Sun, 30 Aug 2015 12:36:00 GMT") == VectorTime());
  EXPECT_FALSE(ParseHttpDate("Sun, 16 Nov 1194 08:49:37 GMT"));  // fuzz_aws_response: overflowed
}

TEST(Errors, SecretsManagerMapping) {
  using keystore::aws::MapAwsError;
  using keystore::aws::Operation;
  EXPECT_EQ(MapAwsError(Operation::kCreate, "k", Err(400, "ResourceExistsException", "exists")),
            Status::KeyExists());
  EXPECT_EQ(MapAwsError(Operation::kRead, "k", Err(400, "ResourceNotFoundException", "")),
            Status::KeyNotFound());
  EXPECT_EQ(MapAwsError(Operation::kDelete, "k", Err(400, "ResourceNotFoundException", "")),
            Status::KeyNotFound());
  // Scheduled for deletion is neither found nor "not found".
  Status s = MapAwsError(
      Operation::kRead, "k",
      Err(400, "InvalidRequestException",
          "You can't perform this operation on the secret because it was marked for deletion."));
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_NE(s.message().find("scheduled for deletion"), std::string::npos);
  s = MapAwsError(Operation::kCreate, "k",
                  Err(400, "InvalidRequestException",
                      "You can't create this secret because a secret with this name is already "
                      "scheduled for deletion."));
  EXPECT_NE(s.message().find("scheduled for deletion"), std::string::npos);
  // KMS problems are named as such.
  for (const char* code : {"EncryptionFailure", "DecryptionFailure", "KMSInvalidStateException",
                           "DisabledException"}) {
    s = MapAwsError(Operation::kCreate, "k", Err(400, code, "x"));
    EXPECT_NE(s.message().find("KMS key"), std::string::npos) << code;
    EXPECT_NE(s.message().find(code), std::string::npos);
  }
  s = MapAwsError(Operation::kRead, "k",
                  Err(400, "AccessDeniedException", "Access to KMS is not allowed"));
  EXPECT_NE(s.message().find("KMS key"), std::string::npos);
  s = MapAwsError(Operation::kRead, "k",
                  Err(400, "AccessDeniedException", "User is not authorized"));
  EXPECT_NE(s.message().find("access denied"), std::string::npos);
  s = MapAwsError(Operation::kRead, "k",
                  Err(400, "UnrecognizedClientException",
                      "The security token included in the request is invalid."));
  EXPECT_NE(s.message().find("rejected the credentials"), std::string::npos);
  AwsError down;
  down.transport = true;
  down.code = "NetworkError";
  EXPECT_EQ(MapAwsError(Operation::kRead, "k", down).code(), Code::kUnreachable);
  // ResourceNotFoundException on create (a missing KMS key in some paths) is
  // not "key does not exist".
  EXPECT_EQ(MapAwsError(Operation::kCreate, "k", Err(400, "ResourceNotFoundException", "")).code(),
            Code::kUnavailable);
}

// ------------------------------------------------------------ JsonClient on loopback

// Answers each request on 127.0.0.1 with the next scripted response and
// records the raw requests it received.
class ScriptedServer {
 public:
  explicit ScriptedServer(std::deque<std::string> responses) : responses_(std::move(responses)) {
    thread_ = std::thread([this] { Run(); });
  }
  ~ScriptedServer() {
    listener_.Close();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(listener_.port()); }
  std::vector<std::string> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  void Run() {
    for (;;) {
      int c = listener_.Accept();
      if (c < 0) return;
      Serve(c);
      close(c);
    }
  }
  void Serve(int c) {
    std::string buf;
    while (auto req = testing::ReadHttpRequest(c, buf)) {
      std::string response;
      {
        std::lock_guard lock(mu_);
        requests_.push_back(req->head + "\r\n\r\n" + req->body);
        if (responses_.empty()) return;
        response = responses_.front();
        responses_.pop_front();
      }
      if (write(c, response.data(), response.size()) < 0) return;
    }
  }

  testing::LoopbackListener listener_;
  std::mutex mu_;
  std::deque<std::string> responses_;
  std::vector<std::string> requests_;
  std::thread thread_;
};

std::string HttpReply(int status, const std::string& body, const std::string& extra_headers = "") {
  return "HTTP/1.1 " + std::to_string(status) +
         " X\r\nContent-Type: application/x-amz-json-1.1\r\n" + extra_headers +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::string HeaderOf(const std::string& raw, const std::string& name) {
  size_t p = raw.find("\r\n" + name + ": ");
  if (p == std::string::npos) return {};
  p += name.size() + 4;
  return raw.substr(p, raw.find("\r\n", p) - p);
}

std::string BodyOf(const std::string& raw) { return raw.substr(raw.find("\r\n\r\n") + 4); }

std::unique_ptr<JsonClient> MakeClient(const std::string& url,
                                       std::vector<std::chrono::milliseconds>* sleeps) {
  JsonClientOptions o;
  o.endpoint = *net::Url::Parse(url);
  o.region = "us-east-1";
  o.service = "secretsmanager";
  o.target_prefix = "secretsmanager";
  auto client = std::make_unique<JsonClient>(o, std::make_shared<net::HttpClient>(),
                                             NewStaticProvider(kExampleKeys));
  client->set_sleeper([sleeps](std::chrono::milliseconds d) { sleeps->push_back(d); });
  return client;
}

TEST(JsonClient, RetriesServerFaultsWithTheSameBodyAndFreshSignatures) {
  ScriptedServer server(
      {HttpReply(500, R"({"__type":"InternalServiceError","Message":"boom"})"),
       HttpReply(400, R"({"__type":"ThrottlingException","message":"Rate exceeded"})"),
       HttpReply(200, R"({"ARN":"arn:x","Name":"k"})")});
  std::vector<std::chrono::milliseconds> sleeps;
  auto client = MakeClient(server.url(), &sleeps);
  CallResult r = client->Call(
      "CreateSecret", {{"Name", "k"}, {"SecretString", "v"}, {"ClientRequestToken", "tok-1"}});
  ASSERT_TRUE(r.ok()) << r.error->ToString();
  EXPECT_EQ(r.attempts, 3);
  EXPECT_EQ(r.body["ARN"], "arn:x");
  ASSERT_EQ(sleeps.size(), 2u);  // one back-off per retry, via the injected sleeper
  EXPECT_LE(sleeps[0], std::chrono::milliseconds(100));   // transient base
  EXPECT_LE(sleeps[1], std::chrono::milliseconds(1000));  // throttling base * 2
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 3u);
  for (const auto& req : reqs) {
    EXPECT_EQ(BodyOf(req), BodyOf(reqs[0]));  // same bytes, same ClientRequestToken
    EXPECT_NE(BodyOf(req).find("tok-1"), std::string::npos);
    EXPECT_EQ(HeaderOf(req, "X-Amz-Target"), "secretsmanager.CreateSecret");
    EXPECT_EQ(HeaderOf(req, "Host"), server.url().substr(7));
    EXPECT_NE(HeaderOf(req, "Authorization").find("/us-east-1/secretsmanager/aws4_request"),
              std::string::npos);
  }
}

TEST(JsonClient, DoesNotRetryClientErrors) {
  ScriptedServer server(
      {HttpReply(400, R"({"__type":"ResourceNotFoundException","Message":"gone"})",
                 "x-amzn-RequestId: rid-7\r\n")});
  std::vector<std::chrono::milliseconds> sleeps;
  auto client = MakeClient(server.url(), &sleeps);
  CallResult r = client->Call("GetSecretValue", {{"SecretId", "k"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error->code, "ResourceNotFoundException");
  EXPECT_EQ(r.error->message, "gone");
  EXPECT_EQ(r.error->request_id, "rid-7");
  EXPECT_EQ(r.attempts, 1);
  EXPECT_TRUE(sleeps.empty());
}

// A key name that is not UTF-8 (`kes migrate` from a directory) has no JSON
// form: the call fails instead of throwing out of nlohmann's dump().
TEST(JsonClient, ANonUtf8StringIsAnErrorNotAnException) {
  ScriptedServer server({});
  std::vector<std::chrono::milliseconds> sleeps;
  auto client = MakeClient(server.url(), &sleeps);
  CallResult r = client->Call("GetSecretValue", {{"SecretId", "bad\xff\xfename"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error->code, "InvalidParameterException");
  EXPECT_TRUE(server.requests().empty());
}

TEST(JsonClient, ResignsOnceWithTheServerClockAfterSkew) {
  // The server's clock is 10 minutes ahead; its Date header says so.
  auto ahead = Clock::to_time_t(Clock::now() + std::chrono::minutes(10));
  std::tm tm{};
  gmtime_r(&ahead, &tm);
  char date[64];
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  ScriptedServer server(
      {HttpReply(
           400,
           R"({"__type":"InvalidSignatureException","message":"Signature expired: X is now earlier than Y"})",
           std::string("Date: ") + date + "\r\n"),
       HttpReply(200, "{}", std::string("Date: ") + date + "\r\n")});
  std::vector<std::chrono::milliseconds> sleeps;
  auto client = MakeClient(server.url(), &sleeps);
  CallResult r = client->Call("ListSecrets", {});
  ASSERT_TRUE(r.ok()) << r.error->ToString();
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  auto first = ParseAmzDate(HeaderOf(reqs[0], "X-Amz-Date"));
  auto second = ParseAmzDate(HeaderOf(reqs[1], "X-Amz-Date"));
  EXPECT_GE(second - first, std::chrono::minutes(9));
  EXPECT_GE(client->clock_offset(), std::chrono::minutes(9));
  EXPECT_EQ(BodyOf(reqs[0]), "{}");  // an empty input is still a JSON object
}

// AWS JSON 1.1 blobs use the project's one base64 codec (Go's StdEncoding,
// as the Go SDK upstream decodes them with).
TEST(AwsBase64, BlobsRoundTripStrictly) {
  const std::vector<std::string> samples = {
      "", "f", "fo", "foo", "foob", "fooba", "foobar", std::string("\0\xff\x10", 3)};
  for (const std::string& s : samples) {
    auto enc = Base64Encode(s);
    auto dec = crypto::Base64Decode(enc);
    ASSERT_TRUE(dec) << enc;
    EXPECT_EQ(std::string(dec->begin(), dec->end()), s);
  }
  EXPECT_EQ(Base64Encode("hunter2"), "aHVudGVyMg==");
  EXPECT_FALSE(crypto::Base64Decode("aHVudGVyMg"));     // padding required
  EXPECT_FALSE(crypto::Base64Decode("aHVu dGVyMg=="));  // no spaces
  EXPECT_FALSE(crypto::Base64Decode("aH=udGVy"));       // padding only at the end
}

}  // namespace
}  // namespace kes::aws
