// Typed, non-throwing reads of JSON object members received from a peer
// (a KES server, AWS). nlohmann's value() and get<T>() throw on a member of
// another type; a peer's answer must never be able to throw out of a
// module. A missing or mistyped member reads as the type's zero value.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

namespace kes {

inline std::string StringMember(const nlohmann::json& j, const char* name) {
  if (!j.is_object()) return {};
  auto it = j.find(name);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

inline bool BoolMember(const nlohmann::json& j, const char* name) {
  if (!j.is_object()) return false;
  auto it = j.find(name);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

inline double NumberMember(const nlohmann::json& j, const char* name) {
  if (!j.is_object()) return 0;
  auto it = j.find(name);
  return it != j.end() && it->is_number() ? it->get<double>() : 0;
}

// A missing or mistyped member reads as an empty object.
inline const nlohmann::json& ObjectMember(const nlohmann::json& j, const char* name) {
  static const nlohmann::json kEmpty = nlohmann::json::object();
  if (!j.is_object()) return kEmpty;
  auto it = j.find(name);
  return it != j.end() && it->is_object() ? *it : kEmpty;
}

// Integers out of int64's range (or fractions) read as 0, not as a wrapped value.
inline int64_t IntMember(const nlohmann::json& j, const char* name) {
  if (!j.is_object()) return 0;
  auto it = j.find(name);
  if (it == j.end()) return 0;
  if (it->is_number_integer() && !it->is_number_unsigned()) return it->get<int64_t>();
  if (it->is_number_unsigned()) {
    const uint64_t u = it->get<uint64_t>();
    return u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ? static_cast<int64_t>(u)
                                                                           : 0;
  }
  return 0;
}

}  // namespace kes
