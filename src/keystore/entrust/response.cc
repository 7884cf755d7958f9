#include "keystore/entrust/response.h"

#include <nlohmann/json.hpp>

#include "common/json_members.h"
#include "common/time.h"
#include "crypto/encoding.h"
#include "crypto/secret_bytes.h"

namespace kes::keystore::entrust {
namespace {

nlohmann::json ParseObject(std::string_view body) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  return j.is_object() ? j : nlohmann::json();
}

// Go's http.Response.Status: "404 Not Found".
std::string StatusLine(int status) {
  const char* text = "";
  switch (status) {
    case 400:
      text = "Bad Request";
      break;
    case 401:
      text = "Unauthorized";
      break;
    case 403:
      text = "Forbidden";
      break;
    case 404:
      text = "Not Found";
      break;
    case 405:
      text = "Method Not Allowed";
      break;
    case 409:
      text = "Conflict";
      break;
    case 413:
      text = "Request Entity Too Large";
      break;
    case 429:
      text = "Too Many Requests";
      break;
    case 500:
      text = "Internal Server Error";
      break;
    case 502:
      text = "Bad Gateway";
      break;
    case 503:
      text = "Service Unavailable";
      break;
    case 504:
      text = "Gateway Timeout";
      break;
    default:
      break;
  }
  std::string line = std::to_string(status);
  if (*text != '\0') line = line + " " + text;
  return line;
}

}  // namespace

Result<AuthToken> ParseAuthToken(std::string_view body) {
  nlohmann::json j = ParseObject(body);
  if (j.is_null()) return Status::Unavailable("keycontrol: login failed: invalid response");
  AuthToken out;
  out.token = StringMember(j, "access_token");
  const std::string expires = StringMember(j, "expires_at");
  if (auto it = j.find("access_token"); it != j.end() && it->is_string()) {
    std::string& held = it->get_ref<std::string&>();
    crypto::Zeroize(held.data(), held.size());
  }
  if (out.token.empty())
    return Status::Unavailable("keycontrol: login failed: auth token is empty");
  // Go's zero time, as a JSON time, reads as "absent".
  if (!expires.empty() && !expires.starts_with("0001-01-01T00:00:00")) {
    auto t = Timestamp::ParseRfc3339(expires);
    if (!t) {
      crypto::Zeroize(out.token.data(), out.token.size());
      return Status::Unavailable("keycontrol: login failed: invalid expires_at '" + expires + "'");
    }
    out.expires_at = std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::seconds(t->seconds) + std::chrono::nanoseconds(t->nanos)));
  }
  return out;
}

Result<std::string> ParseSecretData(std::string_view body) {
  nlohmann::json j = ParseObject(body);
  auto it = j.is_object() ? j.find("secret_data") : j.end();
  if (it == j.end() || !it->is_string()) {
    return Status::Unavailable("keycontrol: failed to fetch key: no secret_data in response");
  }
  std::string& b64 = it->get_ref<std::string&>();
  auto bytes = crypto::Base64Decode(b64);
  crypto::Zeroize(b64.data(), b64.size());
  if (!bytes) return Status::Unavailable("keycontrol: failed to fetch key: invalid secret_data");
  std::string value(bytes->begin(), bytes->end());
  crypto::Zeroize(bytes->data(), bytes->size());
  return value;
}

Result<SecretPage> ParseSecretPage(std::string_view body) {
  nlohmann::json j = ParseObject(body);
  if (j.is_null()) return Status::Unavailable("keycontrol: failed to list keys: invalid response");
  SecretPage page;
  page.next_token = StringMember(j, "next_token");
  auto it = j.find("secrets");
  if (it == j.end() || it->is_null()) return page;
  if (!it->is_array()) {
    return Status::Unavailable("keycontrol: failed to list keys: invalid response");
  }
  for (const nlohmann::json& s : *it) {
    if (BoolMember(s, "expired")) continue;
    std::string name = StringMember(s, "name");
    if (!name.empty()) page.names.push_back(std::move(name));
  }
  return page;
}

std::string ErrorText(int status, std::string_view content_type, std::string_view body) {
  if (content_type.starts_with("application/json")) {
    nlohmann::json j = ParseObject(body);
    if (!j.is_null()) return StringMember(j, "error");
  }
  return StatusLine(status) + ": " + std::string(body.substr(0, 256));
}

}  // namespace kes::keystore::entrust
