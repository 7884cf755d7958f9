// Unit tests of the aws module: the SigV4 signer against every vector in the
// spec folder (read at run time), credential file parsing, the retry policy
// and error-code dispatch.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "aws/sigv4.h"

namespace kes::aws {
namespace {

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

}  // namespace
}  // namespace kes::aws
