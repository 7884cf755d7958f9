#include "keystore/aws/secrets_manager.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <set>

#include "aws/credential_providers.h"
#include "aws/json_client.h"
#include "crypto/encoding.h"
#include "crypto/secret_bytes.h"
#include "keystore/aws/error_mapping.h"
#include "keystore/aws/responses.h"
#include "net/http_client.h"

namespace kes::keystore::aws {
namespace {

using kes::aws::CallResult;

std::string NewUuid4() {
  uint8_t b[16];
  if (RAND_bytes(b, sizeof b) != 1) return {};
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  char out[37];
  std::snprintf(out, sizeof out,
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                b[15]);
  return out;
}

bool IsServerFilterSafe(std::string_view prefix) {
  if (prefix.empty() || prefix.size() > 512) return false;
  return std::all_of(prefix.begin(), prefix.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '/' || c == '_' || c == '+' || c == '=' || c == '.' ||
           c == '@' || c == '-';
  });
}

class SecretsManagerKeyStore : public KeyStore {
 public:
  SecretsManagerKeyStore(std::string display, net::Url endpoint, std::string kms_key,
                         std::shared_ptr<net::HttpClient> http,
                         std::unique_ptr<kes::aws::JsonClient> client)
      : display_(std::move(display)),
        endpoint_(std::move(endpoint)),
        kms_key_(std::move(kms_key)),
        http_(std::move(http)),
        client_(std::move(client)) {}

  std::string DisplayName() const override { return "AWS SecretsManager: " + display_; }

  Result<KeyStoreState> Status(Deadline deadline) override {
    // Like upstream: an unsigned GET of the endpoint; any HTTP answer means
    // reachable. Bounded by the client's 10 s request timeout.
    net::HttpRequest req;
    req.url = endpoint_;
    req.deadline = deadline;
    auto start = std::chrono::steady_clock::now();
    auto resp = http_->Do(req);
    if (!resp.ok()) {
      if (resp.status().code() == Code::kUnreachable)
        return kes::Status::Unreachable(resp.status().message());
      return resp.status();
    }
    return KeyStoreState{std::chrono::steady_clock::now() - start};
  }

  kes::Status Create(std::string_view name, std::string_view value, Deadline deadline) override {
    nlohmann::json in = {{"Name", name}, {"SecretString", value}};
    // One token per logical create, reused by every retry: a retry after a
    // lost success is then a no-op instead of ResourceExistsException.
    std::string token = NewUuid4();
    if (token.empty()) return kes::Status::Internal("aws: CSPRNG failure");
    in["ClientRequestToken"] = token;
    if (!kms_key_.empty()) in["KmsKeyId"] = kms_key_;
    CallResult r = client_->Call("CreateSecret", in, deadline);
    auto& sent = in["SecretString"].get_ref<std::string&>();
    OPENSSL_cleanse(sent.data(), sent.size());
    if (r.ok()) return kes::Status::Ok();
    return MapAwsError(Operation::kCreate, name, *r.error);
  }

  Result<std::string> Get(std::string_view name, Deadline deadline) override {
    CallResult r = client_->Call("GetSecretValue", {{"SecretId", name}}, deadline);
    if (!r.ok()) {
      return MapAwsError(Operation::kRead, name, *r.error);
    }
    return TakeSecretValue(r.body, name);
  }

  kes::Status Delete(std::string_view name, Deadline deadline) override {
    CallResult r = client_->Call(
        "DeleteSecret", {{"SecretId", name}, {"ForceDeleteWithoutRecovery", true}}, deadline);
    if (r.ok()) return kes::Status::Ok();
    return MapAwsError(Operation::kDelete, name, *r.error);
  }

  Result<ListPage> List(std::string_view prefix, int limit, Deadline deadline) override {
    nlohmann::json in = {{"MaxResults", 100}};
    if (IsServerFilterSafe(prefix)) {
      in["Filters"] = nlohmann::json::array({{{"Key", "name"}, {"Values", {prefix}}}});
    }
    std::vector<std::string> names;
    std::set<std::string> seen_tokens;
    for (;;) {
      CallResult r = client_->Call("ListSecrets", in, deadline);
      if (!r.ok()) return MapAwsError(Operation::kList, prefix, *r.error);
      std::string next = ReadListSecretsPage(r.body, prefix, &names);
      if (next.empty()) break;
      // Empty pages with a token are legal; a repeated token is not.
      if (!seen_tokens.insert(next).second) {
        return kes::Status::Unavailable("aws: failed to list: ListSecrets repeated a NextToken");
      }
      in["NextToken"] = std::move(next);
    }
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    ListPage page;
    if (limit > 0 && names.size() > static_cast<size_t>(limit)) {
      page.continue_at = names[limit];
      names.resize(limit);
    }
    page.names = std::move(names);
    return page;
  }

 private:
  std::string display_;
  net::Url endpoint_;
  std::string kms_key_;
  std::shared_ptr<net::HttpClient> http_;
  std::unique_ptr<kes::aws::JsonClient> client_;
};

}  // namespace

Result<std::unique_ptr<KeyStore>> NewSecretsManager(const SecretsManagerOptions& options) {
  if (options.region.empty()) {
    return kes::Status::Invalid("aws: invalid AWS secretsmanager keystore: no region specified");
  }
  std::string endpoint_text = options.endpoint;
  if (endpoint_text.empty()) endpoint_text = "secretsmanager." + options.region + ".amazonaws.com";
  auto endpoint = net::Url::Parse(endpoint_text, "https");
  if (!endpoint.ok()) return endpoint.status().WithContext("aws: invalid endpoint");

  auto env = kes::aws::SystemEnv();
  net::HttpClientOptions http_options;
  http_options.ca_file = options.ca_file.empty() ? env("AWS_CA_BUNDLE") : options.ca_file;
  if (endpoint->scheme == "http" && !net::IsLoopbackHost(endpoint->host)) {
    // An explicit http:// endpoint (LocalStack in a container) is the
    // operator's choice, as upstream accepts it; say once what it means.
    http_options.plain_http_host = endpoint->host;
    spdlog::warn(
        "aws: the Secrets Manager endpoint {} is plain http: requests, including the keys "
        "they create and read, travel unencrypted",
        endpoint->Origin());
  }
  auto http = std::make_shared<net::HttpClient>(http_options);
  KES_TRY(http->CheckUrl(*endpoint).WithContext("aws: invalid endpoint"));

  std::shared_ptr<kes::aws::CredentialProvider> credentials;
  if (options.access_key.empty() && options.secret_key.empty() && options.session_token.empty()) {
    credentials = kes::aws::NewDefaultChain(env, options.region, http_options.ca_file);
  } else {
    credentials = kes::aws::NewStaticProvider(
        kes::aws::Credentials(options.access_key, options.secret_key, options.session_token));
  }

  kes::aws::JsonClientOptions client_options;
  client_options.endpoint = *endpoint;
  client_options.region = options.region;
  client_options.service = "secretsmanager";
  client_options.target_prefix = "secretsmanager";
  if (std::string n = env("AWS_MAX_ATTEMPTS"); !n.empty()) {
    int attempts = 0;
    auto [end, err] = std::from_chars(n.data(), n.data() + n.size(), attempts);
    if (err == std::errc() && end == n.data() + n.size() && attempts >= 1 && attempts <= 10) {
      client_options.retry.max_attempts = attempts;
    }
  }
  auto client = std::make_unique<kes::aws::JsonClient>(client_options, http, credentials);

  auto store = std::make_unique<SecretsManagerKeyStore>(
      options.endpoint.empty() ? endpoint_text : options.endpoint, *endpoint, options.kms_key, http,
      std::move(client));
  if (auto s = store->Status(DeadlineIn(std::chrono::seconds(10))); !s.ok()) {
    spdlog::warn("aws: Secrets Manager endpoint {} not reachable at start-up: {}",
                 endpoint->Origin(), s.status().message());
  }
  return std::unique_ptr<KeyStore>(std::move(store));
}

}  // namespace kes::keystore::aws
