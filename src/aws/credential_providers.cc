#include "aws/credential_providers.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "aws/credential_cache.h"
#include "aws/ini_file.h"
#include "aws/sigv4.h"
#include "common/json_members.h"

namespace kes::aws {
namespace {

Status NotConfigured(std::string msg) { return Status(Code::kNotFound, 500, std::move(msg)); }

bool IsTrue(std::string_view v) {
  std::string s(v);
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s == "true";
}

Result<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Invalid("cannot read '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string ExpandHome(const std::string& path, const EnvLookup& env) {
  if (path.starts_with("~/")) return env("HOME") + path.substr(1);
  return path;
}

CredentialsPtr Make(std::string id, std::string secret, std::string token, std::string source,
                    std::optional<Clock::time_point> expiration = std::nullopt) {
  auto c = std::make_shared<Credentials>(std::move(id), std::move(secret), std::move(token));
  c->source = std::move(source);
  c->expiration = expiration;
  return c;
}

// ---------------------------------------------------------------- static

class StaticProvider : public CredentialProvider {
 public:
  explicit StaticProvider(Credentials c) : creds_(std::make_shared<Credentials>(std::move(c))) {}
  Result<CredentialsPtr> Retrieve() override { return creds_; }
  std::string Name() const override { return "static"; }

 private:
  CredentialsPtr creds_;
};

// ----------------------------------------------------------- environment

class EnvProvider : public CredentialProvider {
 public:
  explicit EnvProvider(EnvLookup env) : env_(std::move(env)) {}
  Result<CredentialsPtr> Retrieve() override {
    std::string id = env_("AWS_ACCESS_KEY_ID");
    if (id.empty()) id = env_("AWS_ACCESS_KEY");
    std::string secret = env_("AWS_SECRET_ACCESS_KEY");
    if (secret.empty()) secret = env_("AWS_SECRET_KEY");
    if (id.empty() || secret.empty())
      return NotConfigured("environment: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY not set");
    return Make(std::move(id), std::move(secret), env_("AWS_SESSION_TOKEN"), "environment");
  }
  std::string Name() const override { return "environment"; }

 private:
  EnvLookup env_;
};

// ----------------------------------------------------------- shared files

class SharedFileProvider : public CredentialProvider {
 public:
  explicit SharedFileProvider(EnvLookup env) : env_(std::move(env)) {}
  std::string Name() const override { return "shared-file"; }

  Result<CredentialsPtr> Retrieve() override {
    std::string profile = env_("AWS_PROFILE");
    const bool explicit_profile = !profile.empty();
    if (profile.empty()) profile = "default";
    std::string cred_path = env_("AWS_SHARED_CREDENTIALS_FILE");
    if (cred_path.empty()) cred_path = "~/.aws/credentials";
    std::string config_path = env_("AWS_CONFIG_FILE");
    if (config_path.empty()) config_path = "~/.aws/config";

    bool found_profile = false;
    for (const auto& [path, is_config] : {std::pair{ExpandHome(cred_path, env_), false},
                                          std::pair{ExpandHome(config_path, env_), true}}) {
      auto text = ReadWholeFile(path);
      if (!text.ok()) continue;  // a missing file is not an error
      IniFile ini = ParseIni(*text);
      const IniSection* section = FindProfile(ini, profile, is_config);
      if (section == nullptr) continue;
      found_profile = true;
      auto get = [&](const char* k) {
        auto it = section->find(k);
        return it == section->end() ? std::string() : it->second;
      };
      std::string id = get("aws_access_key_id");
      std::string secret = get("aws_secret_access_key");
      if (id.empty() && secret.empty()) continue;
      if (id.empty() || secret.empty()) {
        // NOLINTBEGIN(performance-inefficient-string-concatenation): an error message, built once
        return Status::Invalid("shared-file: profile '" + profile + "' in '" + path +
                               "' has only one of aws_access_key_id and aws_secret_access_key");
        // NOLINTEND(performance-inefficient-string-concatenation)
      }
      return Make(std::move(id), std::move(secret), get("aws_session_token"), "shared-file");
    }
    if (explicit_profile && !found_profile) {
      return Status::Invalid("shared-file: profile '" + profile + "' (AWS_PROFILE) not found");
    }
    return NotConfigured("shared-file: no credentials for profile '" + profile + "'");
  }

 private:
  EnvLookup env_;
};

// ----------------------------------------------------------- web identity

std::string XmlUnescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '&') {
      static const std::pair<std::string_view, char> kEntities[] = {
          {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
      bool done = false;
      for (const auto& [ent, ch] : kEntities) {
        if (s.substr(i, ent.size()) == ent) {
          out.push_back(ch);
          i += ent.size() - 1;
          done = true;
          break;
        }
      }
      if (done) continue;
    }
    out.push_back(s[i]);
  }
  return out;
}

std::string XmlElement(std::string_view xml, std::string_view tag) {
  const std::string open = "<" + std::string(tag) + ">";
  const std::string close = "</" + std::string(tag) + ">";
  size_t a = xml.find(open);
  if (a == std::string_view::npos) return {};
  a += open.size();
  size_t b = xml.find(close, a);
  if (b == std::string_view::npos) return {};
  return XmlUnescape(xml.substr(a, b - a));
}

class WebIdentityProvider : public CredentialProvider {
 public:
  WebIdentityProvider(EnvLookup env, std::string region, std::shared_ptr<net::HttpClient> http)
      : env_(std::move(env)), region_(std::move(region)), http_(std::move(http)) {}
  std::string Name() const override { return "web-identity"; }

  Result<CredentialsPtr> Retrieve() override {
    const std::string token_file = env_("AWS_WEB_IDENTITY_TOKEN_FILE");
    if (token_file.empty())
      return NotConfigured("web-identity: AWS_WEB_IDENTITY_TOKEN_FILE not set");
    const std::string role_arn = env_("AWS_ROLE_ARN");
    if (role_arn.empty())
      return Status::Invalid("web-identity: role ARN is not set (AWS_ROLE_ARN)");
    std::string session = env_("AWS_ROLE_SESSION_NAME");
    if (session.empty()) {
      session = "kes-session-" + std::to_string(Clock::to_time_t(Clock::now()));
    }
    // Re-read on every fetch: EKS rotates the projected token.
    auto token = ReadWholeFile(token_file);
    if (!token.ok())
      return Status::Invalid("web-identity: cannot read token file '" + token_file + "'");
    std::string jwt = *token;
    while (!jwt.empty() && (jwt.back() == '\n' || jwt.back() == '\r' || jwt.back() == ' '))
      jwt.pop_back();

    std::string endpoint = env_("AWS_ENDPOINT_URL_STS");
    if (endpoint.empty()) endpoint = "https://sts." + region_ + ".amazonaws.com";
    auto url = net::Url::Parse(endpoint, "https");
    if (!url.ok()) return Status::Invalid("web-identity: " + url.status().message());

    net::HttpRequest req;
    req.method = "POST";
    req.url = *url;
    req.headers = {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"},
                   {"Accept", "text/xml"}};
    req.body = "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=" +
               UriEncode(role_arn, false) + "&RoleSessionName=" + UriEncode(session, false) +
               "&WebIdentityToken=" + UriEncode(jwt, false);
    auto resp = http_->Do(req);
    if (!resp.ok()) return resp.status().WithContext("web-identity: STS AssumeRoleWithWebIdentity");
    if (resp->status != 200) {
      std::string code = XmlElement(resp->body, "Code");
      return Status::Unavailable("web-identity: STS AssumeRoleWithWebIdentity failed: " +
                                 (code.empty() ? "HTTP " + std::to_string(resp->status) : code) +
                                 (XmlElement(resp->body, "Message").empty()
                                      ? ""
                                      : ": " + XmlElement(resp->body, "Message")));
    }
    std::string id = XmlElement(resp->body, "AccessKeyId");
    std::string secret = XmlElement(resp->body, "SecretAccessKey");
    std::string session_token = XmlElement(resp->body, "SessionToken");
    auto expiration = ParseIso8601(XmlElement(resp->body, "Expiration"));
    if (id.empty() || secret.empty() || session_token.empty() || !expiration) {
      return Status::Unavailable("web-identity: malformed STS response");
    }
    return Make(std::move(id), std::move(secret), std::move(session_token), "web-identity",
                expiration);
  }

 private:
  EnvLookup env_;
  std::string region_;
  std::shared_ptr<net::HttpClient> http_;
};

// ----------------------------------------------------------- container

}  // namespace

Result<CredentialsPtr> ParseCredentialJson(std::string_view body, const char* source) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object()) return Status::Unavailable(std::string(source) + ": response is not JSON");
  auto str = [&](const char* k) { return StringMember(j, k); };
  std::string id = str("AccessKeyId"), secret = str("SecretAccessKey");
  if (id.empty() || secret.empty()) {
    std::string code = str("Code"), msg = str("Message");
    return Status::Unavailable(std::string(source) + ": no credentials in response" +
                               (code.empty() ? "" : ": " + code) + (msg.empty() ? "" : ": " + msg));
  }
  std::optional<Clock::time_point> exp;
  if (!str("Expiration").empty()) {
    exp = ParseIso8601(str("Expiration"));
    if (!exp) return Status::Unavailable(std::string(source) + ": bad Expiration");
  }
  return Make(std::move(id), std::move(secret), str("Token"), source, exp);
}

namespace {

class ContainerProvider : public CredentialProvider {
 public:
  ContainerProvider(EnvLookup env, std::shared_ptr<net::HttpClient> http)
      : env_(std::move(env)), http_(std::move(http)) {}
  std::string Name() const override { return "container"; }

  Result<CredentialsPtr> Retrieve() override {
    std::string full = env_("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    std::string relative = env_("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    std::string target;
    if (!relative.empty()) {
      target = "http://169.254.170.2" + relative;
    } else if (!full.empty()) {
      target = full;
    } else {
      return NotConfigured("container: AWS_CONTAINER_CREDENTIALS_* not set");
    }
    auto url = net::Url::Parse(target);
    if (!url.ok()) return Status::Invalid("container: " + url.status().message());
    if (url->scheme == "http" && !net::IsLoopbackHost(url->host) && url->host != "169.254.170.2" &&
        url->host != "169.254.170.23" && url->host != "fd00:ec2::23") {
      return Status::Invalid("container: refusing plain http to '" + url->host +
                             "' (only loopback and the ECS/EKS agent addresses)");
    }
    net::HttpRequest req;
    req.url = *url;
    req.headers = {{"Accept", "application/json"}};
    std::string auth;
    if (std::string file = env_("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"); !file.empty()) {
      auto text = ReadWholeFile(file);
      if (!text.ok()) return Status::Invalid("container: cannot read '" + file + "'");
      auth = *text;
      while (!auth.empty() && (auth.back() == '\n' || auth.back() == '\r')) auth.pop_back();
    } else {
      auth = env_("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    }
    if (auth.find_first_of("\r\n") != std::string::npos) {
      return Status::Invalid("container: authorization token contains CR or LF");
    }
    if (!auth.empty()) req.headers.emplace_back("Authorization", auth);
    Status last;
    for (int attempt = 0; attempt < 3; ++attempt) {
      auto resp = http_->Do(req);
      if (resp.ok() && resp->status == 200) return ParseCredentialJson(resp->body, "container");
      last = resp.ok() ? Status::Unavailable("container: HTTP " + std::to_string(resp->status))
                       : resp.status().WithContext("container");
      if (resp.ok() && resp->status >= 400 && resp->status < 500) break;
    }
    return last;
  }

 private:
  EnvLookup env_;
  std::shared_ptr<net::HttpClient> http_;
};

// ----------------------------------------------------------- IMDS

class ImdsProvider : public CredentialProvider {
 public:
  ImdsProvider(EnvLookup env, std::shared_ptr<net::HttpClient> http)
      : env_(std::move(env)), http_(std::move(http)) {}
  std::string Name() const override { return "ec2-metadata"; }

  Result<CredentialsPtr> Retrieve() override {
    if (IsTrue(env_("AWS_EC2_METADATA_DISABLED"))) return NotConfigured("ec2-metadata: disabled");
    std::string base = env_("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    if (base.empty()) {
      std::string mode = env_("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
      std::transform(mode.begin(), mode.end(), mode.begin(),
                     [](unsigned char c) { return std::tolower(c); });
      base = mode == "ipv6" ? "http://[fd00:ec2::254]" : "http://169.254.169.254";
    }
    while (!base.empty() && base.back() == '/') base.pop_back();
    auto url = net::Url::Parse(base + "/latest/api/token");
    if (!url.ok()) return Status::Invalid("ec2-metadata: " + url.status().message());
    const bool v1_disabled = IsTrue(env_("AWS_EC2_METADATA_V1_DISABLED"));

    net::HttpRequest token_req;
    token_req.method = "PUT";
    token_req.url = *url;
    token_req.headers = {{"X-aws-ec2-metadata-token-ttl-seconds", "21600"}};
    token_req.timeout = std::chrono::seconds(1);
    std::string token;
    auto resp = http_->Do(token_req);
    if (resp.ok() && resp->status == 200) {
      token = resp->body;
    } else if (resp.ok() && (resp->status == 403 || resp->status == 404 || resp->status == 405)) {
      if (v1_disabled)
        return Status::Unavailable("ec2-metadata: IMDSv2 token refused and IMDSv1 disabled");
    } else if (resp.ok()) {
      return Status::Unavailable("ec2-metadata: token request answered HTTP " +
                                 std::to_string(resp->status));
    } else {
      // No metadata service at all (not on EC2): the chain ends here.
      return NotConfigured("ec2-metadata: " + resp.status().message());
    }
    auto get = [&](const std::string& path) -> Result<net::HttpResponse> {
      auto u = net::Url::Parse(base + path);
      if (!u.ok()) return u.status();
      net::HttpRequest r;
      r.url = *u;
      r.timeout = std::chrono::seconds(1);
      if (!token.empty()) r.headers.emplace_back("X-aws-ec2-metadata-token", token);
      return http_->Do(r);
    };
    auto roles = get("/latest/meta-data/iam/security-credentials/");
    if (!roles.ok()) return roles.status().WithContext("ec2-metadata");
    if (roles->status != 200) {
      return Status::Unavailable("ec2-metadata: role lookup answered HTTP " +
                                 std::to_string(roles->status));
    }
    std::string role = roles->body.substr(0, roles->body.find('\n'));
    while (!role.empty() && (role.back() == '\r' || role.back() == ' ')) role.pop_back();
    if (role.empty()) return Status::Unavailable("ec2-metadata: no IAM role attached");
    auto creds = get("/latest/meta-data/iam/security-credentials/" + role);
    if (!creds.ok()) return creds.status().WithContext("ec2-metadata");
    if (creds->status != 200) {
      return Status::Unavailable("ec2-metadata: credentials answered HTTP " +
                                 std::to_string(creds->status));
    }
    return ParseCredentialJson(creds->body, "ec2-metadata");
  }

 private:
  EnvLookup env_;
  std::shared_ptr<net::HttpClient> http_;
};

// ----------------------------------------------------------- chain

class ChainProvider : public CredentialProvider {
 public:
  explicit ChainProvider(std::vector<std::shared_ptr<CredentialProvider>> p)
      : providers_(std::move(p)) {}
  std::string Name() const override { return "chain"; }
  Result<CredentialsPtr> Retrieve() override {
    for (const auto& p : providers_) {
      auto r = p->Retrieve();
      if (r.ok() || r.status().code() != Code::kNotFound) return r;
    }
    return Status::Unavailable("NoCredentialProviders: no valid providers in chain");
  }
  void Invalidate() override {
    for (const auto& p : providers_) p->Invalidate();
  }

 private:
  std::vector<std::shared_ptr<CredentialProvider>> providers_;
};

}  // namespace

EnvLookup SystemEnv() {
  return [](std::string_view name) {
    const char* v = std::getenv(std::string(name).c_str());
    return v ? std::string(v) : std::string();
  };
}

std::optional<Clock::time_point> ParseIso8601(std::string_view text) {
  std::tm tm{};
  std::string s(text);
  const char* p = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (p == nullptr) return std::nullopt;
  if (*p == '.') {
    ++p;
    while (std::isdigit(static_cast<unsigned char>(*p))) ++p;  // sub-second: irrelevant here
  }
  int64_t offset = 0;
  if (*p == 'Z' || *p == 'z') {
    ++p;
  } else if (*p == '+' || *p == '-') {
    // Exactly "+hh:mm": each byte is checked before the next is read, so a
    // short suffix never moves p past the terminator.
    auto digit = [](char c) { return c >= '0' && c <= '9'; };
    if (!digit(p[1]) || !digit(p[2]) || p[3] != ':' || !digit(p[4]) || !digit(p[5])) {
      return std::nullopt;
    }
    const int sign = *p == '-' ? -1 : 1;
    const int hh = (p[1] - '0') * 10 + (p[2] - '0');
    const int mm = (p[4] - '0') * 10 + (p[5] - '0');
    offset = sign * (int64_t{hh} * 3600 + int64_t{mm} * 60);
    p += 6;
  } else {
    return std::nullopt;
  }
  if (*p != '\0') return std::nullopt;
  // Clock counts nanoseconds in 64 bits (years 1678-2262): a time outside
  // 1970-2200 is no credential expiry and would overflow the conversion.
  if (tm.tm_year < 70 || tm.tm_year > 300) return std::nullopt;
  return Clock::from_time_t(timegm(&tm) - offset);
}

std::shared_ptr<CredentialProvider> NewStaticProvider(Credentials credentials) {
  credentials.source = "static";
  return std::make_shared<StaticProvider>(std::move(credentials));
}
std::shared_ptr<CredentialProvider> NewEnvProvider(EnvLookup env) {
  return std::make_shared<EnvProvider>(std::move(env));
}
std::shared_ptr<CredentialProvider> NewSharedFileProvider(EnvLookup env) {
  return std::make_shared<SharedFileProvider>(std::move(env));
}
std::shared_ptr<CredentialProvider> NewWebIdentityProvider(EnvLookup env, std::string region,
                                                           std::shared_ptr<net::HttpClient> http) {
  return std::make_shared<WebIdentityProvider>(std::move(env), std::move(region), std::move(http));
}
std::shared_ptr<CredentialProvider> NewContainerProvider(EnvLookup env,
                                                         std::shared_ptr<net::HttpClient> http) {
  return std::make_shared<ContainerProvider>(std::move(env), std::move(http));
}
std::shared_ptr<CredentialProvider> NewImdsProvider(EnvLookup env,
                                                    std::shared_ptr<net::HttpClient> http) {
  return std::make_shared<ImdsProvider>(std::move(env), std::move(http));
}
std::shared_ptr<CredentialProvider> NewChainProvider(
    std::vector<std::shared_ptr<CredentialProvider>> providers) {
  return std::make_shared<ChainProvider>(std::move(providers));
}

std::shared_ptr<CredentialProvider> NewDefaultChain(const EnvLookup& env, std::string region,
                                                    const std::string& ca_file) {
  net::HttpClientOptions sts_options;
  sts_options.ca_file = ca_file;
  auto sts_http = std::make_shared<net::HttpClient>(sts_options);
  net::HttpClientOptions md_options;
  md_options.allow_metadata_http = true;
  md_options.connect_timeout = std::chrono::seconds(1);
  md_options.request_timeout = std::chrono::seconds(2);
  auto md_http = std::make_shared<net::HttpClient>(md_options);
  auto chain =
      NewChainProvider({NewEnvProvider(env), NewSharedFileProvider(env),
                        NewWebIdentityProvider(env, std::move(region), sts_http),
                        NewContainerProvider(env, md_http), NewImdsProvider(env, md_http)});
  return std::make_shared<CachingProvider>(std::move(chain));
}

}  // namespace kes::aws
