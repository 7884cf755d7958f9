#include "server/state.h"

#include "identity/identity.h"

namespace kes::server {

Status ApplyPolicies(const config::ServerConfig& cfg, State* state) {
  state->admin = cfg.admin_identity;
  for (const auto& [name, pc] : cfg.policies) {
    if (!identity::IsValidName(name)) {
      return Status::Invalid("kes: policy name '" + name +
                             "' is empty, too long or contains invalid characters");
    }
    PolicyEntry& e = state->policies[name];
    e.name = name;
    e.policy.allow = pc.allow;
    e.policy.deny = pc.deny;
    e.identities = pc.identities;
  }
  for (const auto& [name, e] : state->policies) {
    for (const auto& id : e.identities) {
      if (!identity::IsValidName(id)) {
        return Status::Invalid("kes: identity '" + id +
                               "' is empty, too long or contains invalid characters");
      }
      if (!state->policy_of.emplace(id, &e).second) {
        // NOLINTBEGIN(performance-inefficient-string-concatenation): an error message, built once
        return Status::Invalid("kes: cannot assign policy '" + name + "' to '" + id +
                               "': identity already has a policy");
        // NOLINTEND(performance-inefficient-string-concatenation)
      }
    }
  }
  return Status::Ok();
}

void ApplyRouteSettings(const std::map<std::string, config::ApiConfig>& api, State* state) {
  for (const Route& r : Routes()) {
    RouteSettings& s = state->routes[static_cast<size_t>(r.id)];
    s.skip_auth = false;
    s.timeout = r.timeout;
    auto it = api.find(std::string(r.path));
    if (it == api.end()) continue;
    s.skip_auth = it->second.skip_auth;
    if (it->second.timeout.count() > 0) s.timeout = it->second.timeout;
  }
}

}  // namespace kes::server
