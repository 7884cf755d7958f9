// Policies (api.md §2.4): allow/deny lists of API path patterns. A pattern
// ending in '*' matches by prefix, otherwise by equality; deny wins; an
// empty policy denies everything.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace kes::identity {

struct Policy {
  std::vector<std::string> allow;
  std::vector<std::string> deny;

  // OK if `path` is allowed; Status::NotAllowed() otherwise.
  Status Verify(std::string_view path) const;
  // The SDK's client-side helper (vectors:policy-is-subset-*).
  bool IsSubset(const Policy& other) const;
};

// Whether one pattern matches a path.
bool PatternMatches(std::string_view pattern, std::string_view path);

}  // namespace kes::identity
