// Test helper: the shared spec's vector file (vectors/kes-test-vectors.json),
// located via the KES_SPEC_DIR environment variable or the compile-time
// KES_SPEC_DIR definition. Tests read vectors at run time; none are pasted
// into code.
#pragma once

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace kes::testing {

inline std::string SpecDir() {
  if (const char* env = std::getenv("KES_SPEC_DIR"); env != nullptr && *env != '\0') return env;
#ifdef KES_SPEC_DIR
  return KES_SPEC_DIR;
#else
  return "";
#endif
}

inline const nlohmann::json& Vectors() {
  static const nlohmann::json doc = [] {
    const std::string path = SpecDir() + "/vectors/kes-test-vectors.json";
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open test vectors: " + path);
    std::stringstream ss;
    ss << in.rdbuf();
    return nlohmann::json::parse(ss.str());
  }();
  return doc;
}

// One group of vectors, e.g. "secret_key_decrypt"; throws if it is missing.
inline const nlohmann::json& VectorGroup(std::string_view name) {
  return Vectors().at(std::string(name));
}

}  // namespace kes::testing
