#include "keystore/gcp/credentials.h"

#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "aws/sigv4.h"  // UriEncode
#include "common/json_members.h"
#include "common/os.h"
#include "crypto/encoding.h"
#include "crypto/secret_bytes.h"
#include "identity/pem.h"

namespace kes::keystore::gcp {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int64_t kJwtLifetime = 3600;  // seconds, as Google's libraries sign

// RFC 7515 base64url without padding.
std::string Base64Url(std::string_view bytes) {
  std::string s = crypto::Base64Encode(bytes);
  while (!s.empty() && s.back() == '=') s.pop_back();
  for (char& c : s) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return s;
}

std::string JoinScopes(const std::vector<std::string>& scopes, char sep) {
  std::string out;
  for (size_t i = 0; i < scopes.size(); ++i) {
    if (i) out += sep;
    out += scopes[i];
  }
  return out;
}

Result<std::string> SignRs256(EVP_PKEY* key, std::string_view data) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr) return Status::Internal("gcp: out of memory");
  std::string sig;
  size_t len = 0;
  bool ok = EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
            EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(data.data()),
                           data.size()) == 1;
  if (ok) {
    sig.resize(len);
    ok = EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                        reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
    sig.resize(len);
  }
  EVP_MD_CTX_free(ctx);
  if (!ok) return Status::Internal("gcp: failed to sign the access token (RS256)");
  return sig;
}

class SelfSignedJwtSource : public TokenSource {
 public:
  SelfSignedJwtSource(ServiceAccountKey key, std::vector<std::string> scopes)
      : key_(std::move(key)), scopes_(std::move(scopes)) {}

  Result<AccessToken> Fetch(Deadline) override {
    const int64_t now =
        std::chrono::duration_cast<seconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    KES_ASSIGN_OR_RETURN(std::string jwt, SignSelfSignedJwt(key_, scopes_, now));
    return AccessToken{std::move(jwt), seconds(kJwtLifetime)};
  }

 private:
  const ServiceAccountKey key_;
  const std::vector<std::string> scopes_;
};

class MetadataSource : public TokenSource {
 public:
  MetadataSource(net::Url origin, std::vector<std::string> scopes)
      : origin_(std::move(origin)), scopes_(std::move(scopes)), http_(Options(origin_)) {}

  Result<AccessToken> Fetch(Deadline deadline) override {
    net::HttpRequest req;
    req.url = origin_;
    req.url.path = "/computeMetadata/v1/instance/service-accounts/default/token";
    if (!scopes_.empty())
      req.url.query = "scopes=" + aws::UriEncode(JoinScopes(scopes_, ','), false);
    req.headers.emplace_back("Metadata-Flavor", "Google");
    req.deadline = deadline;
    auto resp = http_.Do(req);
    if (!resp.ok()) return resp.status().WithContext("gcp: metadata server");
    auto wipe = [&] { crypto::Zeroize(resp->body.data(), resp->body.size()); };
    if (resp->status != 200) {
      wipe();
      return Status::Unavailable("gcp: metadata server answered HTTP " +
                                 std::to_string(resp->status));
    }
    auto doc = nlohmann::json::parse(resp->body, nullptr, false);
    wipe();
    AccessToken token{StringMember(doc, "access_token"), seconds(IntMember(doc, "expires_in"))};
    if (doc.is_object()) {
      auto it = doc.find("access_token");
      if (it != doc.end() && it->is_string()) {
        auto& s = it->get_ref<std::string&>();
        crypto::Zeroize(s.data(), s.size());
      }
    }
    if (token.value.empty() || token.lifetime.count() <= 0) {
      return Status::Unavailable("gcp: metadata server: invalid token response");
    }
    return token;
  }

 private:
  static net::HttpClientOptions Options(const net::Url& origin) {
    net::HttpClientOptions o;
    o.connect_timeout = milliseconds(3000);
    o.request_timeout = milliseconds(10000);
    o.allow_metadata_http = true;
    // GCE_METADATA_HOST names a plain-HTTP server, like the real one.
    if (origin.scheme == "http") o.plain_http_host = origin.host;
    o.max_response_bytes = 1 << 20;
    return o;
  }

  const net::Url origin_;
  const std::vector<std::string> scopes_;
  net::HttpClient http_;
};

// A service-account key file (GOOGLE_APPLICATION_CREDENTIALS or gcloud's).
Result<std::unique_ptr<TokenSource>> FromKeyFile(const std::string& path,
                                                 std::vector<std::string> scopes) {
  auto text = ReadWholeFile(path);
  if (!text.ok()) return text.status().WithContext("google: error getting credentials");
  auto doc = nlohmann::json::parse(*text, nullptr, false);
  crypto::Zeroize(text->data(), text->size());
  const std::string type = StringMember(doc, "type");
  if (type != "service_account") {
    return Status::Invalid("gcp: credentials file '" + path + "': unsupported type '" + type +
                           "' (only service_account keys are supported)");
  }
  std::string pem = StringMember(doc, "private_key");
  if (doc.is_object() && doc.contains("private_key") && doc["private_key"].is_string()) {
    auto& s = doc["private_key"].get_ref<std::string&>();
    crypto::Zeroize(s.data(), s.size());
  }
  auto key =
      ParseServiceAccountKey(StringMember(doc, "client_email"), StringMember(doc, "client_id"),
                             StringMember(doc, "private_key_id"), std::move(pem));
  if (!key.ok()) return key.status().WithContext("gcp: credentials file '" + path + "'");
  return NewSelfSignedJwtSource(*std::move(key), std::move(scopes));
}

// Go's metadata.OnGCE probe: the link-local address answers with
// "Metadata-Flavor: Google".
bool MetadataServerAnswers() {
  net::HttpClientOptions o;
  o.connect_timeout = milliseconds(1000);
  o.request_timeout = milliseconds(2000);
  o.allow_metadata_http = true;
  net::HttpClient http(o);
  net::HttpRequest req;
  auto url = net::Url::Parse("http://169.254.169.254/");
  if (!url.ok()) return false;
  req.url = *url;
  auto resp = http.Do(req);
  return resp.ok() && resp->Header("metadata-flavor") == "Google";
}

}  // namespace

Result<ServiceAccountKey> ParseServiceAccountKey(std::string client_email, std::string client_id,
                                                 std::string private_key_id,
                                                 std::string private_key_pem) {
  struct Wipe {
    std::string& s;
    ~Wipe() { crypto::Zeroize(s.data(), s.size()); }
  } wipe{private_key_pem};
  if (client_email.empty()) return Status::Invalid("gcp: no client email provided");
  if (client_id.empty()) return Status::Invalid("gcp: no client ID provided");
  if (private_key_pem.empty()) return Status::Invalid("gcp: no client private key provided");
  if (private_key_id.empty()) return Status::Invalid("gcp: no client private key ID provided");
  // Literal "\n" pairs (a key pasted into YAML on one line) become newlines,
  // in place: no second copy of the key.
  size_t out = 0;
  for (size_t i = 0; i < private_key_pem.size(); ++i, ++out) {
    if (private_key_pem[i] == '\\' && i + 1 < private_key_pem.size() &&
        private_key_pem[i + 1] == 'n') {
      private_key_pem[out] = '\n';
      ++i;
    } else {
      private_key_pem[out] = private_key_pem[i];
    }
  }
  crypto::Zeroize(private_key_pem.data() + out, private_key_pem.size() - out);
  auto key = identity::ParsePrivateKeyPem(std::string_view(private_key_pem).substr(0, out), "");
  if (!key.ok()) {
    return Status::Invalid("gcp: invalid client private key: " + key.status().message());
  }
  if (EVP_PKEY_base_id(key->get()) != EVP_PKEY_RSA) {
    return Status::Invalid("gcp: invalid client private key: not an RSA key");
  }
  return ServiceAccountKey{std::move(client_email), std::move(client_id), std::move(private_key_id),
                           *std::move(key)};
}

Result<std::string> SignSelfSignedJwt(const ServiceAccountKey& key,
                                      const std::vector<std::string>& scopes, int64_t iat) {
  const nlohmann::json header = {{"alg", "RS256"}, {"typ", "JWT"}, {"kid", key.private_key_id}};
  const nlohmann::json claims = {{"iss", key.client_email},
                                 {"sub", key.client_email},
                                 {"scope", JoinScopes(scopes, ' ')},
                                 {"iat", iat},
                                 {"exp", iat + kJwtLifetime}};
  std::string jwt = Base64Url(header.dump()) + "." + Base64Url(claims.dump());
  KES_ASSIGN_OR_RETURN(std::string sig, SignRs256(key.key.get(), jwt));
  return jwt + "." + Base64Url(sig);
}

std::unique_ptr<TokenSource> NewSelfSignedJwtSource(ServiceAccountKey key,
                                                    std::vector<std::string> scopes) {
  return std::make_unique<SelfSignedJwtSource>(std::move(key), std::move(scopes));
}

std::unique_ptr<TokenSource> NewMetadataSource(net::Url origin, std::vector<std::string> scopes) {
  return std::make_unique<MetadataSource>(std::move(origin), std::move(scopes));
}

Result<std::unique_ptr<TokenSource>> FindDefaultCredentials(const Env& env,
                                                            std::vector<std::string> scopes) {
  if (std::string file = env("GOOGLE_APPLICATION_CREDENTIALS"); !file.empty()) {
    return FromKeyFile(file, std::move(scopes));
  }
  if (std::string home = env("HOME"); !home.empty()) {
    const std::string file = home + "/.config/gcloud/application_default_credentials.json";
    if (ReadWholeFile(file).ok()) return FromKeyFile(file, std::move(scopes));
  }
  if (std::string host = env("GCE_METADATA_HOST"); !host.empty()) {
    auto origin = net::Url::Parse("http://" + host);
    if (!origin.ok()) return origin.status().WithContext("gcp: invalid GCE_METADATA_HOST");
    return NewMetadataSource(*std::move(origin), std::move(scopes));
  }
  if (MetadataServerAnswers()) {
    auto origin = net::Url::Parse("http://169.254.169.254");
    if (!origin.ok()) return origin.status();
    return NewMetadataSource(*std::move(origin), std::move(scopes));
  }
  return Status::Invalid(
      "google: could not find default credentials. See "
      "https://cloud.google.com/docs/authentication/external/set-up-adc for more information");
}

CachedToken::~CachedToken() { crypto::Zeroize(token_.data(), token_.size()); }

Result<std::string> CachedToken::Get(Deadline deadline) {
  {
    std::lock_guard lock(mu_);
    if (!token_.empty() && Clock::now() < renew_at_) return token_;
  }
  std::lock_guard fetching(fetch_mu_);
  {
    // Another caller may have renewed it while this one waited.
    std::lock_guard lock(mu_);
    if (!token_.empty() && Clock::now() < renew_at_) return token_;
  }
  const auto start = Clock::now();
  auto fresh = source_->Fetch(deadline);
  std::lock_guard lock(mu_);
  if (!fresh.ok()) {
    if (!token_.empty() && Clock::now() < expires_at_) {
      spdlog::warn("gcp: access token renewal failed, using the current one: {}",
                   fresh.status().message());
      return token_;
    }
    return fresh.status();
  }
  crypto::Zeroize(token_.data(), token_.size());
  token_ = std::move(fresh->value);
  expires_at_ = start + fresh->lifetime;
  renew_at_ = start + fresh->lifetime * 3 / 4;
  return token_;
}

void CachedToken::Invalidate(const std::string& token) {
  std::lock_guard lock(mu_);
  if (token == token_) renew_at_ = expires_at_ = Clock::time_point{};
}

}  // namespace kes::keystore::gcp
