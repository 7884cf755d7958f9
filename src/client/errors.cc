// The SDK's error decoding (api.md §5.3) and the Status codes the C++ side
// uses for the KES sentinels.
#include <nlohmann/json.hpp>
#include <sstream>

#include "client/client.h"

namespace kes::client {
namespace {

Code CodeFor(int status, std::string_view message) {
  if (status == 400 && message == "key already exists") return Code::kAlreadyExists;
  if (status == 400 && message == "decryption failed: ciphertext is not authentic") {
    return Code::kNotAuthentic;
  }
  if (status == 404) return Code::kNotFound;
  if (status == 403) return Code::kPermissionDenied;
  if (status == 406 || status == 409 || status == 501) return Code::kUnsupported;
  if (status == 504) return Code::kUnreachable;
  if (status == 502 || status == 503) return Code::kUnavailable;
  if (status >= 500) return Code::kInternal;
  return Code::kInvalidArgument;
}

std::string_view TrimSpace(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

Status DecodeError(int http_status, std::string_view content_type, std::string_view body) {
  std::string message(body);
  if (TrimSpace(content_type).starts_with("application/json")) {
    // Like Go's json.Decoder: the first JSON value counts, trailing data is
    // ignored (upstream's failed key listing appends `{"names":null}`).
    nlohmann::json json;
    try {
      std::istringstream in{std::string(body)};
      in >> json;
    } catch (const nlohmann::json::exception&) {
      json = nlohmann::json();
    }
    if (!json.is_object()) {
      return Status(Code::kInternal, http_status, "kes: invalid error response: not JSON");
    }
    message.clear();
    if (auto it = json.find("message"); it != json.end() && it->is_string()) {
      message = it->get<std::string>();
    }
    if (auto it = json.find("error");
        it != json.end() && it->is_string() && !it->get<std::string>().empty()) {
      message = it->get<std::string>();
    }
  }
  // Legacy server wording (api.md §5.3).
  if (http_status == 400 && message == "key does already exist") return Status::KeyExists();
  if (http_status == 403 && message == "prohibited by policy") return Status::NotAllowed();
  if (http_status == 404 && message == "key does not exist") return Status::KeyNotFound();
  if (http_status == 403 && message == "not authorized: insufficient permissions") {
    return Status::NotAllowed();
  }
  const Code code = CodeFor(http_status, message);  // before `message` is moved from
  return Status(code, http_status, std::move(message));
}

bool IsCertificateVerifyError(const Status& s) {
  return s.code() == Code::kUnreachable && s.http_status() == 0 &&
         s.message().find("tls: failed to verify certificate") != std::string::npos;
}

}  // namespace kes::client
