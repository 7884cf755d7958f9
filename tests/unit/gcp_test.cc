// The GCP Secret Manager keystore: credentials (service-account keys,
// self-signed RS256 JWTs, token caching), endpoint forms, and the keystore
// contract against an in-process fake Secret Manager + metadata server on
// 127.0.0.1 that answers like the REST API (keystores-cloud.md §2.3) and
// verifies every JWT with the service account's public key.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "crypto/encoding.h"
#include "keystore/gcp/config.h"
#include "keystore/gcp/credentials.h"
#include "keystore/gcp/secret_manager.h"
#include "keystore_contract.h"
#include "loopback_http.h"

namespace kes::keystore::gcp {
namespace {

using nlohmann::json;

std::string Base64UrlDecode(std::string s) {
  for (char& c : s) c = c == '-' ? '+' : c == '_' ? '/' : c;
  while (s.size() % 4) s += '=';
  auto bytes = crypto::Base64Decode(s);
  return bytes ? std::string(bytes->begin(), bytes->end()) : std::string("<invalid>");
}

// A dummy RSA-2048 key as PKCS#8 (or PKCS#1) PEM; one per test binary
// (generating one takes a good fraction of a second).
std::string NewRsaPem(bool pkcs1 = false) {
  static EVP_PKEY* const key = EVP_RSA_gen(2048);
  BIO* bio = BIO_new(BIO_s_mem());
  if (pkcs1) {
    PEM_write_bio_PrivateKey_traditional(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  } else {
    PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  }
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(n));
  BIO_free(bio);
  return pem;
}

bool VerifyRs256(EVP_PKEY* key, std::string_view signed_part, const std::string& sig) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok =
      EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
      EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                       reinterpret_cast<const unsigned char*>(signed_part.data()),
                       signed_part.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

using Reply = testing::JsonReply;

Reply ApiError(int code, const std::string& status, const std::string& msg) {
  return {code, json({{"error", {{"code", code}, {"message", msg}, {"status", status}}}}).dump()};
}

class FakeSecretManager {
 public:
  std::string host() const { return "127.0.0.1:" + std::to_string(server_.port()); }

  std::mutex mu_;
  EVP_PKEY* account_key = nullptr;  // verifies JWTs when set
  std::string kid;
  std::map<std::string, std::string> secrets;  // name -> version 1 ("" = none yet)
  std::map<std::string, int> tokens;           // metadata token -> uses left (-1 = forever)
  int token_fetches = 0, unauthorized = 0, list_calls = 0;
  bool fail_add_version = false;
  std::vector<json> jwt_claims;

 private:
  static std::string Header(const std::string& head, const std::string& name) {
    return testing::HeaderValue(head, name);
  }

  bool Authorized(const std::string& head) {
    const std::string auth = Header(head, "authorization");
    if (!auth.starts_with("Bearer ")) return false;
    const std::string token = auth.substr(7);
    if (auto it = tokens.find(token); it != tokens.end()) {
      if (it->second == 0) return false;
      if (it->second > 0) --it->second;
      return true;
    }
    if (account_key == nullptr) return false;
    const size_t a = token.find('.'), b = token.rfind('.');
    if (a == std::string::npos || a == b) return false;
    const json header = json::parse(Base64UrlDecode(token.substr(0, a)), nullptr, false);
    const json claims =
        json::parse(Base64UrlDecode(token.substr(a + 1, b - a - 1)), nullptr, false);
    if (!header.is_object() || header.value("kid", "") != kid || header.value("alg", "") != "RS256")
      return false;
    jwt_claims.push_back(claims);
    return VerifyRs256(account_key, std::string_view(token).substr(0, b),
                       Base64UrlDecode(token.substr(b + 1)));
  }

  Reply Handle(const std::string& head, const std::string& body) {
    std::lock_guard lock(mu_);
    const size_t sp = head.find(' ');
    const std::string method = head.substr(0, sp);
    std::string target = head.substr(sp + 1, head.find(' ', sp + 1) - sp - 1);
    const size_t q = target.find('?');
    const std::string query = q == std::string::npos ? "" : target.substr(q + 1);
    const std::string path = target.substr(0, q);
    if (path == "/") return {404, "not found"};
    if (path == "/computeMetadata/v1/instance/service-accounts/default/token") {
      if (Header(head, "metadata-flavor") != "Google") return {403, "flavor"};
      std::string t = "ya29.fake-" + std::to_string(++token_fetches);
      tokens[t] = -1;
      return {200,
              json({{"access_token", t}, {"expires_in", 3599}, {"token_type", "Bearer"}}).dump()};
    }
    if (!Authorized(head)) {
      ++unauthorized;
      return ApiError(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.");
    }
    const std::string collection = "/v1/projects/p1/secrets";
    if (path == collection && method == "POST") {
      const std::string name = query.substr(query.find('=') + 1);
      if (secrets.count(name)) return ApiError(409, "ALREADY_EXISTS", "exists");
      secrets[name] = "";
      return {200, json({{"name", "projects/42/secrets/" + name}}).dump()};
    }
    if (path == collection && method == "GET") {
      ++list_calls;
      // Pages of two, the token being the index to continue at.
      size_t start = query.starts_with("pageToken=") ? std::stoul(query.substr(10)) : 0;
      json page = {{"secrets", json::array()}};
      size_t i = 0;
      for (const auto& [n, v] : secrets) {
        if (i >= start && i < start + 2)
          page["secrets"].push_back({{"name", "projects/42/secrets/" + n}});
        ++i;
      }
      if (start + 2 < secrets.size()) page["nextPageToken"] = std::to_string(start + 2);
      return {200, page.dump()};
    }
    const std::string by_number = "/v1/projects/42/secrets/";
    if (path.starts_with(by_number) && path.ends_with(":addVersion") && method == "POST") {
      const std::string name = path.substr(by_number.size(), path.size() - by_number.size() - 11);
      if (fail_add_version) return ApiError(500, "INTERNAL", "injected");
      auto doc = json::parse(body, nullptr, false);
      auto bytes = crypto::Base64Decode(doc["payload"]["data"].get<std::string>());
      secrets[name] = std::string(bytes->begin(), bytes->end());
      return {200, json({{"name", "projects/42/secrets/" + name + "/versions/1"}}).dump()};
    }
    if (path.starts_with(by_number) && method == "DELETE") {
      const std::string name = path.substr(by_number.size());
      if (!secrets.erase(name)) return ApiError(404, "NOT_FOUND", "no secret");
      return {200, "{}"};
    }
    const std::string mine = collection + "/";
    if (path.starts_with(mine) && path.ends_with("/versions/1:access") && method == "GET") {
      const std::string name = path.substr(mine.size(), path.size() - mine.size() - 18);
      auto it = secrets.find(name);
      if (it == secrets.end() || it->second.empty()) return ApiError(404, "NOT_FOUND", "none");
      return {200, json({{"payload", {{"data", crypto::Base64Encode(it->second)}}}}).dump()};
    }
    if (path.starts_with(mine) && method == "DELETE") {
      if (!secrets.erase(path.substr(mine.size()))) return ApiError(404, "NOT_FOUND", "none");
      return {200, "{}"};
    }
    return ApiError(404, "NOT_FOUND", "no route " + path);
  }

  // Last: stopped (its threads joined) before the state above goes.
  testing::LoopbackJsonServer server_{
      [this](const std::string& head, const std::string& body) { return Handle(head, body); }};
};

Config MetadataConfig(const FakeSecretManager& fake) {
  Config c;
  c.project_id = "p1";
  c.endpoint = "http://" + fake.host();
  return c;
}

Env EnvWith(std::map<std::string, std::string> vars) {
  return [vars](const char* name) {
    auto it = vars.find(name);
    return it == vars.end() ? std::string() : it->second;
  };
}

TEST(GcpConfig, ProjectIdIsRequired) {
  Config c;
  EXPECT_EQ(c.Validate().message(),
            "kesconf: invalid GCP secretmanager keystore: no project ID specified");
  c.project_id = "p";
  EXPECT_TRUE(c.Validate().ok());
}

TEST(GcpConfig, EndpointInGrpcFormOrAsUrl) {
  // Upstream's documented default "secretmanager.googleapis.com:443" broke
  // its status probe (minio/kes#348); both forms work here.
  auto def = ApiOrigin("");
  ASSERT_TRUE(def.ok());
  EXPECT_EQ(def->Origin(), "https://secretmanager.googleapis.com:443");
  auto grpc = ApiOrigin("secretmanager.googleapis.com:443");
  ASSERT_TRUE(grpc.ok());
  EXPECT_EQ(grpc->Origin(), "https://secretmanager.googleapis.com:443");
  auto url = ApiOrigin("https://127.0.0.1:8443/ignored?x=1");
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->ToString(), "https://127.0.0.1:8443/");
}

TEST(GcpCredentials, AllFourFieldsAreRequiredInUpstreamsOrder) {
  const std::string pem = NewRsaPem();
  EXPECT_EQ(ParseServiceAccountKey("", "id", "kid", pem).status().message(),
            "gcp: no client email provided");
  EXPECT_EQ(ParseServiceAccountKey("e", "", "kid", pem).status().message(),
            "gcp: no client ID provided");
  EXPECT_EQ(ParseServiceAccountKey("e", "id", "kid", "").status().message(),
            "gcp: no client private key provided");
  EXPECT_EQ(ParseServiceAccountKey("e", "id", "", pem).status().message(),
            "gcp: no client private key ID provided");
  EXPECT_EQ(ParseServiceAccountKey("e", "id", "kid", "garbage").status().code(),
            Code::kInvalidArgument);
}

TEST(GcpCredentials, KeysOnOneLinePkcs1AndNonRsaKeys) {
  std::string one_line;
  for (char c : NewRsaPem()) one_line += c == '\n' ? std::string("\\n") : std::string(1, c);
  EXPECT_TRUE(ParseServiceAccountKey("e", "id", "kid", one_line).ok());
  EXPECT_TRUE(ParseServiceAccountKey("e", "id", "kid", NewRsaPem(/*pkcs1=*/true)).ok());
  EVP_PKEY* ec = EVP_EC_gen("P-256");
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, ec, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  const std::string ec_pem(data, static_cast<size_t>(n));
  BIO_free(bio);
  EVP_PKEY_free(ec);
  EXPECT_EQ(ParseServiceAccountKey("e", "id", "kid", ec_pem).status().message(),
            "gcp: invalid client private key: not an RSA key");
}

TEST(GcpCredentials, SelfSignedJwtIsUpstreamsShapeAndVerifies) {
  auto key = ParseServiceAccountKey("sa@p.iam.gserviceaccount.com", "1", "kid-1", NewRsaPem());
  ASSERT_TRUE(key.ok());
  auto jwt = SignSelfSignedJwt(*key, {kDefaultScope, "https://x/y"}, 1700000000);
  ASSERT_TRUE(jwt.ok());
  const size_t a = jwt->find('.'), b = jwt->rfind('.');
  EXPECT_EQ(json::parse(Base64UrlDecode(jwt->substr(0, a))),
            json({{"alg", "RS256"}, {"typ", "JWT"}, {"kid", "kid-1"}}));
  EXPECT_EQ(json::parse(Base64UrlDecode(jwt->substr(a + 1, b - a - 1))),
            json({{"iss", "sa@p.iam.gserviceaccount.com"},
                  {"sub", "sa@p.iam.gserviceaccount.com"},
                  {"scope", std::string(kDefaultScope) + " https://x/y"},
                  {"iat", 1700000000},
                  {"exp", 1700003600}}));
  EXPECT_EQ(jwt->find_first_of("+/="), std::string::npos);  // base64url, no padding
  // `scopes: [""]` (the docs' reference config) is sent as it is, as upstream does.
  auto empty = SignSelfSignedJwt(*key, {""}, 1700000000);
  ASSERT_TRUE(empty.ok());
  const size_t ea = empty->find('.'), eb = empty->rfind('.');
  EXPECT_EQ(json::parse(Base64UrlDecode(empty->substr(ea + 1, eb - ea - 1)))["scope"], "");
  EXPECT_TRUE(VerifyRs256(key->key.get(), std::string_view(*jwt).substr(0, b),
                          Base64UrlDecode(jwt->substr(b + 1))));
}

class CountingSource : public TokenSource {
 public:
  explicit CountingSource(std::chrono::seconds lifetime) : lifetime_(lifetime) {}
  Result<AccessToken> Fetch(Deadline) override {
    if (fail) return Status::Unavailable("down");
    return AccessToken{"t" + std::to_string(++*fetches), lifetime_};
  }
  std::shared_ptr<int> fetches = std::make_shared<int>(0);
  bool fail = false;

 private:
  std::chrono::seconds lifetime_;
};

TEST(GcpCredentials, CachedTokenIsReusedRenewedAndReplaced) {
  auto src = std::make_unique<CountingSource>(std::chrono::seconds(3600));
  auto fetches = src->fetches;
  CountingSource* raw = src.get();
  CachedToken cache(std::move(src));
  EXPECT_EQ(*cache.Get(kNoDeadline), "t1");
  EXPECT_EQ(*cache.Get(kNoDeadline), "t1");
  EXPECT_EQ(*fetches, 1);
  cache.Invalidate("other");  // a stale rejection does not drop the new token
  EXPECT_EQ(*cache.Get(kNoDeadline), "t1");
  cache.Invalidate("t1");
  EXPECT_EQ(*cache.Get(kNoDeadline), "t2");
  raw->fail = true;
  cache.Invalidate("t2");
  EXPECT_FALSE(cache.Get(kNoDeadline).ok());  // no valid token left to fall back on

  // A token past three quarters of its life is renewed before it expires.
  auto zero = std::make_unique<CountingSource>(std::chrono::seconds(0));
  auto zero_fetches = zero->fetches;
  CachedToken short_lived(std::move(zero));
  EXPECT_EQ(*short_lived.Get(kNoDeadline), "t1");
  EXPECT_EQ(*short_lived.Get(kNoDeadline), "t2");
  EXPECT_EQ(*zero_fetches, 2);
}

TEST(GcpKeystore, ContractWithMetadataCredentials) {
  FakeSecretManager fake;
  auto ks = Open(MetadataConfig(fake), EnvWith({{"GCE_METADATA_HOST", fake.host()}}));
  ASSERT_TRUE(ks.ok()) << ks.status().message();
  EXPECT_EQ((*ks)->DisplayName(), "GCP SecretManager: Project=p1");
  testing::ExerciseContract(**ks);
  std::lock_guard lock(fake.mu_);
  EXPECT_EQ(fake.token_fetches, 1);  // cached
  EXPECT_GE(fake.list_calls, 2);     // pages of two followed
}

TEST(GcpKeystore, ContractWithServiceAccountKey) {
  FakeSecretManager fake;
  Config c = MetadataConfig(fake);
  c.client_email = "sa@p1.iam.gserviceaccount.com";
  c.client_id = "1";
  c.private_key_id = "kid-1";
  c.private_key = NewRsaPem();
  auto key = ParseServiceAccountKey(c.client_email, c.client_id, c.private_key_id, c.private_key);
  ASSERT_TRUE(key.ok());
  {
    std::lock_guard lock(fake.mu_);
    fake.account_key = key->key.get();
    fake.kid = "kid-1";
  }
  auto ks = Open(c, EnvWith({}));
  ASSERT_TRUE(ks.ok()) << ks.status().message();
  testing::ExerciseContract(**ks);
  std::lock_guard lock(fake.mu_);
  EXPECT_EQ(fake.unauthorized, 0);
  ASSERT_FALSE(fake.jwt_claims.empty());
  EXPECT_EQ(fake.jwt_claims.back()["scope"], kDefaultScope);
  fake.account_key = nullptr;
}

TEST(GcpKeystore, FailedAddVersionRemovesTheEmptySecret) {
  FakeSecretManager fake;
  auto ks = Open(MetadataConfig(fake), EnvWith({{"GCE_METADATA_HOST", fake.host()}}));
  ASSERT_TRUE(ks.ok());
  {
    std::lock_guard lock(fake.mu_);
    fake.fail_add_version = true;
  }
  auto st = (*ks)->Create("half", "v", kNoDeadline);
  EXPECT_EQ(st.code(), Code::kUnavailable);
  EXPECT_EQ(st.message(), "gcp: failed to create 'half': INTERNAL: injected");
  {
    std::lock_guard lock(fake.mu_);
    EXPECT_EQ(fake.secrets.count("half"), 0u);
    fake.fail_add_version = false;
  }
  EXPECT_TRUE((*ks)->Create("half", "v", kNoDeadline).ok());
}

TEST(GcpKeystore, RejectedTokenIsReplacedOnce) {
  FakeSecretManager fake;
  auto ks = Open(MetadataConfig(fake), EnvWith({{"GCE_METADATA_HOST", fake.host()}}));
  ASSERT_TRUE(ks.ok());
  ASSERT_TRUE((*ks)->Create("k", "v", kNoDeadline).ok());
  {
    std::lock_guard lock(fake.mu_);
    for (auto& [t, uses] : fake.tokens) uses = 0;  // revoked
  }
  EXPECT_EQ(*(*ks)->Get("k", kNoDeadline), "v");
  std::lock_guard lock(fake.mu_);
  EXPECT_EQ(fake.token_fetches, 2);
  EXPECT_EQ(fake.unauthorized, 1);
}

TEST(GcpKeystore, UnreachableEndpointFailsStartUpAndNoCredentialsIsAnError) {
  int port;
  {
    testing::LoopbackListener closed;
    port = closed.port();
  }
  Config c;
  c.project_id = "p1";
  c.endpoint = "http://127.0.0.1:" + std::to_string(port);
  auto ks = Open(c, EnvWith({{"GCE_METADATA_HOST", "127.0.0.1:" + std::to_string(port)}}));
  EXPECT_EQ(ks.status().code(), Code::kUnreachable);
  c.client_email = "x";
  EXPECT_EQ(Open(c, EnvWith({})).status().message(), "gcp: no client ID provided");
}

}  // namespace
}  // namespace kes::keystore::gcp
