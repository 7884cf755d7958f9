#include "keystore/gemalto/response.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/json_members.h"
#include "crypto/secret_bytes.h"

namespace kes::keystore::gemalto {
namespace {

using nlohmann::json;

json ParseObject(std::string_view body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  return j.is_object() ? j : json();
}

std::string_view Trim(std::string_view s) {
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string StatusLine(int status) {
  static const std::pair<int, const char*> kReasons[] = {
      {200, "OK"},
      {201, "Created"},
      {204, "No Content"},
      {400, "Bad Request"},
      {401, "Unauthorized"},
      {403, "Forbidden"},
      {404, "Not Found"},
      {405, "Method Not Allowed"},
      {409, "Conflict"},
      {413, "Request Entity Too Large"},
      {422, "Unprocessable Entity"},
      {429, "Too Many Requests"},
      {500, "Internal Server Error"},
      {502, "Bad Gateway"},
      {503, "Service Unavailable"},
      {504, "Gateway Timeout"},
  };
  for (const auto& [code, reason] : kReasons) {
    if (code == status) return std::to_string(status) + " " + reason;
  }
  return std::to_string(status);
}

ApiError ParseError(const net::HttpResponse& resp) {
  if (resp.Header("content-type").starts_with("application/json")) {
    const json j = ParseObject(resp.body);
    return {IntMember(j, "code"), StringMember(j, "codeDesc")};
  }
  // Plain text (e.g. the auth middleware's 401): bounded, it goes to a log.
  return {resp.status, std::string(Trim(resp.body).substr(0, 512))};
}

Result<Login> ParseLogin(const net::HttpResponse& resp) {
  if (resp.status != 200) {
    const ApiError e = ParseError(resp);
    return Status::Unavailable(StatusLine(resp.status) + ": " + e.desc + " (" +
                               std::to_string(e.code) + ")");
  }
  json j = ParseObject(resp.body);
  if (j.is_null()) return Status::Unavailable("gemalto: invalid auth token response");
  Login login;
  login.jwt = StringMember(j, "jwt");
  if (auto it = j.find("jwt"); it != j.end() && it->is_string()) {
    auto& s = it->get_ref<std::string&>();
    crypto::Zeroize(s.data(), s.size());
  }
  if (login.jwt.empty())
    return Status::Unavailable("server response does not contain an auth token");
  const std::string type = StringMember(j, "token_type");
  if (type != "Bearer") {
    crypto::Zeroize(login.jwt.data(), login.jwt.size());
    return Status::Unavailable("unexpected auth token type '" + type.substr(0, 64) + "'");
  }
  const auto duration = j.find("duration");
  const int64_t secs = IntMember(j, "duration");
  if (secs <= 0) {
    crypto::Zeroize(login.jwt.data(), login.jwt.size());
    const std::string shown = duration == j.end() ? "0" : duration->dump();
    return Status::Unavailable("invalid auth token expiry '" + shown.substr(0, 64) + "'");
  }
  // Anything above a year is a year: the renewal loop waits half of it.
  login.duration = std::chrono::seconds(std::min<int64_t>(secs, 365LL * 24 * 3600));
  return login;
}

Result<std::string> ParseMaterial(std::string_view body) {
  json j = ParseObject(body);
  auto it = j.is_object() ? j.find("material") : j.end();
  if (!j.is_object() || it == j.end() || !it->is_string()) {
    return Status::Unavailable("response contains no key material");
  }
  std::string material = it->get<std::string>();
  auto& s = it->get_ref<std::string&>();
  crypto::Zeroize(s.data(), s.size());
  return material;
}

Result<SecretPage> ParsePage(std::string_view body) {
  const json j = ParseObject(body);
  if (j.is_null()) return Status::Unavailable("invalid list response: not a JSON object");
  SecretPage page;
  page.skip = IntMember(j, "skip");
  page.total = IntMember(j, "total");
  auto res = j.find("resources");
  if (res == j.end() || res->is_null()) return page;  // Go decodes a missing list as empty
  if (!res->is_array())
    return Status::Unavailable("invalid list response: 'resources' is not a list");
  for (const json& r : *res) {
    const std::string name = StringMember(r, "name");
    if (name.empty()) return Status::Unavailable("invalid list response: a resource has no name");
    page.names.push_back(name);
  }
  return page;
}

}  // namespace kes::keystore::gemalto
