#include "keystore/aws/responses.h"

#include "crypto/encoding.h"
#include "crypto/secret_bytes.h"

namespace kes::keystore::aws {

Result<std::string> TakeSecretValue(nlohmann::json& body, std::string_view name) {
  if (auto it = body.find("SecretString"); it != body.end() && it->is_string()) {
    return std::move(it->get_ref<std::string&>());
  }
  if (auto it = body.find("SecretBinary"); it != body.end() && it->is_string()) {
    auto bytes = crypto::Base64Decode(it->get_ref<const std::string&>());
    if (!bytes)
      return kes::Status::Unavailable("aws: failed to read '" + std::string(name) +
                                      "': invalid SecretBinary");
    std::string value(bytes->begin(), bytes->end());
    crypto::Zeroize(bytes->data(), bytes->size());
    return value;
  }
  return kes::Status::Unavailable("aws: failed to read '" + std::string(name) +
                                  "': secret has no value");
}

std::string ReadListSecretsPage(const nlohmann::json& body, std::string_view prefix,
                                std::vector<std::string>* names) {
  if (auto list = body.find("SecretList"); list != body.end() && list->is_array()) {
    for (const auto& s : *list) {
      auto n = s.find("Name");
      if (n == s.end() || !n->is_string()) continue;
      const auto& name = n->get_ref<const std::string&>();
      if (name.starts_with(prefix)) names->push_back(name);
    }
  }
  auto next = body.find("NextToken");
  if (next == body.end() || !next->is_string()) return {};
  return next->get<std::string>();
}

}  // namespace kes::keystore::aws
