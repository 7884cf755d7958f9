#include "keystore/fortanix/response.h"

#include <cctype>
#include <nlohmann/json.hpp>

#include "common/json_members.h"
#include "crypto/secret_bytes.h"

namespace kes::keystore::fortanix {
namespace {

nlohmann::json Parse(std::string_view body) {
  return nlohmann::json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
}

// Wipes the string member `name` of the parsed tree (a token or key value).
void ZeroizeMember(nlohmann::json& j, const char* name) {
  if (!j.is_object()) return;
  auto it = j.find(name);
  if (it == j.end() || !it->is_string()) return;
  std::string& held = it->get_ref<std::string&>();
  crypto::Zeroize(held.data(), held.size());
}

Status Malformed(std::string_view what) {
  return Status::Unavailable("fortanix: invalid " + std::string(what) + " response");
}

}  // namespace

Result<std::string> ParseSessionToken(std::string_view body) {
  nlohmann::json j = Parse(body);
  std::string token = StringMember(j, "access_token");
  ZeroizeMember(j, "access_token");
  if (token.empty()) return Malformed("session");
  return token;
}

Result<Sobject> ParseSobject(std::string_view body) {
  nlohmann::json j = Parse(body);
  Sobject s{StringMember(j, "kid"), StringMember(j, "name"), BoolMember(j, "enabled"),
            StringMember(j, "value")};
  ZeroizeMember(j, "value");
  if (s.kid.empty()) {
    crypto::Zeroize(s.value.data(), s.value.size());
    return Malformed("security object");
  }
  return s;
}

Result<std::vector<std::string>> ParseNames(std::string_view body) {
  nlohmann::json j = Parse(body);
  if (!j.is_array()) return Malformed("listing");
  std::vector<std::string> names;
  names.reserve(j.size());
  for (const nlohmann::json& obj : j) {
    auto it = obj.is_object() ? obj.find("name") : obj.end();
    if (!obj.is_object() || it == obj.end() || !it->is_string()) return Malformed("listing");
    names.push_back(it->get<std::string>());
  }
  return names;
}

std::string ErrorMessage(const net::HttpResponse& resp) {
  std::string type = resp.Header("content-type");
  for (char& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (type.starts_with("application/json")) {
    nlohmann::json j = Parse(resp.body);
    if (j.is_object()) return StringMember(j, "message");
  }
  return resp.body;
}

}  // namespace kes::keystore::fortanix
