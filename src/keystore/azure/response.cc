#include "keystore/azure/response.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <nlohmann/json.hpp>

#include "common/json_members.h"
#include "crypto/secret_bytes.h"

namespace kes::keystore::azure {
namespace {

using nlohmann::json;

std::optional<json> ParseObject(std::string_view body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  return j;
}

// A page's "value" array (missing or null: empty); nullptr when mistyped.
const json* ValueArray(const json& page) {
  static const json kEmpty = json::array();
  auto it = page.find("value");
  if (it == page.end() || it->is_null()) return &kEmpty;
  return it->is_array() ? &*it : nullptr;
}

// "https://host/secrets/<name>[/<version>]" -> the last non-empty segment.
std::string LastSegment(std::string_view id) {
  while (id.ends_with('/')) id.remove_suffix(1);
  const size_t slash = id.rfind('/');
  return std::string(slash == std::string_view::npos ? id : id.substr(slash + 1));
}

std::optional<int64_t> OptionalInt(const json& j, const char* name) {
  if (!j.is_object()) return std::nullopt;
  auto it = j.find(name);
  if (it == j.end() || !it->is_number()) return std::nullopt;
  return IntMember(j, name);
}

// A JSON number, or a decimal number in a string (IMDS).
int64_t FlexibleInt(const json& j, const char* name) {
  if (!j.is_object()) return 0;
  auto it = j.find(name);
  if (it == j.end()) return 0;
  if (it->is_string()) {
    const auto& s = it->get_ref<const std::string&>();
    int64_t v = 0;
    auto [end, err] = std::from_chars(s.data(), s.data() + s.size(), v);
    return err == std::errc() && end == s.data() + s.size() ? v : 0;
  }
  return IntMember(j, name);
}

}  // namespace

ErrorBody ParseError(std::string_view body) {
  ErrorBody out;
  auto j = ParseObject(body);
  if (!j) return out;
  const json& e = ObjectMember(*j, "error");
  out.code = StringMember(e, "code");
  out.message = StringMember(e, "message");
  out.inner = StringMember(ObjectMember(e, "innererror"), "code");
  return out;
}

Result<VersionPage> ParseVersions(std::string_view body) {
  auto j = ParseObject(body);
  if (!j) return Status::Unavailable("azure: invalid secret versions answer");
  VersionPage page;
  page.next_link = StringMember(*j, "nextLink");
  const json* items = ValueArray(*j);
  if (items == nullptr) return Status::Unavailable("azure: invalid secret versions answer");
  for (const json& v : *items) {
    SecretVersion sv;
    sv.version = LastSegment(StringMember(v, "id"));
    sv.created = OptionalInt(ObjectMember(v, "attributes"), "created");
    page.versions.push_back(std::move(sv));
  }
  return page;
}

std::string OldestVersion(const std::vector<SecretVersion>& versions) {
  const SecretVersion* oldest = nullptr;
  for (const SecretVersion& v : versions) {
    if (v.created && (oldest == nullptr || *v.created < *oldest->created)) oldest = &v;
  }
  return oldest == nullptr ? std::string() : oldest->version;
}

Result<SecretBundle> ParseSecret(std::string_view body) {
  auto j = ParseObject(body);
  if (!j) return Status::Unavailable("azure: invalid secret answer");
  SecretBundle out;
  auto it = j->find("value");
  if (it != j->end() && it->is_string()) {
    std::string& v = it->get_ref<std::string&>();
    out.value = v;
    crypto::Zeroize(v.data(), v.size());
  }
  const json& attrs = ObjectMember(*j, "attributes");
  if (auto e = attrs.find("enabled"); e != attrs.end() && e->is_boolean()) {
    out.enabled = e->get<bool>();
  }
  out.not_before = OptionalInt(attrs, "nbf");
  out.expires = OptionalInt(attrs, "exp");
  return out;
}

Result<NamePage> ParseSecretList(std::string_view body) {
  auto j = ParseObject(body);
  if (!j) return Status::Unavailable("azure: invalid secret list answer");
  NamePage page;
  page.next_link = StringMember(*j, "nextLink");
  const json* items = ValueArray(*j);
  if (items == nullptr) return Status::Unavailable("azure: invalid secret list answer");
  for (const json& v : *items) {
    std::string name = LastSegment(StringMember(v, "id"));
    if (!name.empty()) page.names.push_back(std::move(name));
  }
  return page;
}

Result<TokenAnswer> ParseToken(std::string_view body) {
  auto j = ParseObject(body);
  if (!j) return Status::Unavailable("invalid token answer");
  TokenAnswer out;
  auto it = j->find("access_token");
  if (it != j->end() && it->is_string()) {
    std::string& t = it->get_ref<std::string&>();
    out.access_token = t;
    crypto::Zeroize(t.data(), t.size());
  }
  if (out.access_token.empty()) return Status::Unavailable("token answer without access_token");
  out.expires_in = FlexibleInt(*j, "expires_in");
  return out;
}

std::string ParseAadError(std::string_view body) {
  auto j = ParseObject(body);
  if (!j) return {};
  std::string error = StringMember(*j, "error");
  std::string description = StringMember(*j, "error_description");
  if (description.empty()) return error;
  return error.empty() ? description : error + ": " + description;
}

std::optional<Challenge> ParseChallenge(std::string_view header) {
  // Scheme first, then comma- or space-separated key="value" parameters.
  size_t i = 0;
  while (i < header.size() && header[i] == ' ') ++i;
  const size_t scheme_end = header.find(' ', i);
  if (scheme_end == std::string_view::npos) return std::nullopt;
  std::string scheme(header.substr(i, scheme_end - i));
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (scheme != "bearer") return std::nullopt;
  Challenge out;
  i = scheme_end;
  while (i < header.size()) {
    while (i < header.size() && (header[i] == ' ' || header[i] == ',')) ++i;
    const size_t eq = header.find('=', i);
    if (eq == std::string_view::npos) break;
    std::string_view key = header.substr(i, eq - i);
    std::string value;
    i = eq + 1;
    if (i < header.size() && header[i] == '"') {
      const size_t close = header.find('"', i + 1);
      if (close == std::string_view::npos) return std::nullopt;
      value = header.substr(i + 1, close - i - 1);
      i = close + 1;
    } else {
      const size_t end = std::min(header.find(',', i), header.size());
      value = header.substr(i, end - i);
      i = end;
    }
    if (key == "authorization" || key == "authorization_uri") {
      out.authorization = std::move(value);
    } else if (key == "resource") {
      out.resource = std::move(value);
    } else if (key == "scope") {
      out.scope = std::move(value);
    }
  }
  if (out.resource.empty() && out.scope.empty()) return std::nullopt;
  return out;
}

}  // namespace kes::keystore::azure
