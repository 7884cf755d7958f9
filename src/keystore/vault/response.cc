#include "keystore/vault/response.h"

#include <nlohmann/json.hpp>

namespace kes::keystore::vault {
namespace {

using nlohmann::json;

// Any bytes; an object or a discarded value. nlohmann's non-throwing parse.
json ParseObject(std::string_view body) {
  json j = json::parse(body.begin(), body.end(), nullptr, false);
  if (!j.is_object()) return json();
  return j;
}

const json* Member(const json& j, std::string_view name) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(name);
  return it == j.end() ? nullptr : &*it;
}

}  // namespace

Result<Auth> ParseAuth(std::string_view body) {
  const json j = ParseObject(body);
  const json* auth = Member(j, "auth");
  const json* token = auth != nullptr ? Member(*auth, "client_token") : nullptr;
  if (token == nullptr || !token->is_string() || token->get_ref<const std::string&>().empty()) {
    return Status::Unavailable(
        "vault: authentication failed: SDK returned no error but also no token");
  }
  Auth a;
  a.token = token->get<std::string>();
  if (const json* ttl = Member(*auth, "lease_duration");
      ttl != nullptr && ttl->is_number_integer() && ttl->get<int64_t>() > 0) {
    a.ttl = std::chrono::seconds(ttl->get<int64_t>());
  }
  if (const json* r = Member(*auth, "renewable"); r != nullptr && r->is_boolean()) {
    a.renewable = r->get<bool>();
  }
  return a;
}

Result<Health> ParseHealth(std::string_view body) {
  const json j = ParseObject(body);
  if (!j.is_object()) return Status::Unavailable("vault: invalid health response");
  Health h;
  if (const json* v = Member(j, "initialized"); v != nullptr && v->is_boolean()) {
    h.initialized = v->get<bool>();
  }
  if (const json* v = Member(j, "sealed"); v != nullptr && v->is_boolean())
    h.sealed = v->get<bool>();
  return h;
}

KvEntry ParseKvEntry(std::string_view body, std::string_view name, bool v2) {
  KvEntry e;
  const json j = ParseObject(body);
  const json* data = Member(j, "data");
  if (data == nullptr || data->is_null()) return e;
  if (v2) {
    const json* inner = Member(*data, "data");
    if (!data->is_object() || inner == nullptr) {
      e.kind = KvEntry::Kind::kNoData;
      return e;
    }
    if (inner->is_null()) {
      e.kind = KvEntry::Kind::kNoValue;  // soft-deleted or destroyed version
      return e;
    }
    if (!inner->is_object()) {
      e.kind = KvEntry::Kind::kBadData;
      return e;
    }
    data = inner;
  }
  const json* field = Member(*data, name);
  if (field == nullptr || field->is_null()) {
    e.kind = KvEntry::Kind::kNoValue;
  } else if (!field->is_string()) {
    e.kind = KvEntry::Kind::kNotString;
  } else {
    e.kind = KvEntry::Kind::kValue;
    e.value = field->get<std::string>();
  }
  return e;
}

Result<std::vector<std::string>> ParseKeyList(std::string_view body) {
  const json j = ParseObject(body);
  const json* data = Member(j, "data");
  const json* keys = data != nullptr ? Member(*data, "keys") : nullptr;
  if (keys == nullptr || !keys->is_array()) {
    return Status::Unavailable("invalid key listing format");
  }
  std::vector<std::string> names;
  for (const json& k : *keys) {
    if (!k.is_string()) return Status::Unavailable("invalid key listing format");
    names.push_back(k.get<std::string>());
  }
  return names;
}

Result<std::string> ParseDataString(std::string_view body, std::string_view field) {
  const json j = ParseObject(body);
  if (!j.is_object()) return Status::Unavailable("invalid vault response");
  const json* data = Member(j, "data");
  const json* v = data != nullptr ? Member(*data, field) : nullptr;
  if (v == nullptr || v->is_null()) return std::string();
  if (!v->is_string()) return Status::Unavailable("invalid vault response");
  return v->get<std::string>();
}

std::vector<std::string> ParseErrors(std::string_view body) {
  std::vector<std::string> out;
  const json j = ParseObject(body);
  const json* errors = Member(j, "errors");
  if (errors == nullptr || !errors->is_array()) return out;
  for (const json& e : *errors) {
    if (e.is_string()) out.push_back(e.get<std::string>());
  }
  return out;
}

}  // namespace kes::keystore::vault
