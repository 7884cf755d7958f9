#include "identity/policy.h"

namespace kes::identity {
namespace {

bool IsPrefixPattern(std::string_view p) { return !p.empty() && p.back() == '*'; }

std::string_view Stem(std::string_view p) {
  return IsPrefixPattern(p) ? p.substr(0, p.size() - 1) : p;
}

// Whether every path matched by `inner` is also matched by `outer`.
bool Covers(std::string_view outer, std::string_view inner) {
  if (outer.empty() || inner.empty()) return false;
  if (!IsPrefixPattern(outer)) return outer == inner;
  return inner.substr(0, Stem(outer).size()) == Stem(outer);
}

// Whether some path is matched by both patterns.
bool Overlaps(std::string_view a, std::string_view b) {
  if (a.empty() || b.empty()) return false;
  const bool pa = IsPrefixPattern(a), pb = IsPrefixPattern(b);
  if (!pa && !pb) return a == b;
  if (pa && !pb) return PatternMatches(a, b);
  if (!pa && pb) return PatternMatches(b, a);
  const auto sa = Stem(a), sb = Stem(b);
  return sa.size() <= sb.size() ? sb.substr(0, sa.size()) == sa : sa.substr(0, sb.size()) == sb;
}

}  // namespace

bool PatternMatches(std::string_view pattern, std::string_view path) {
  if (pattern.empty()) return false;
  if (IsPrefixPattern(pattern)) {
    const auto stem = Stem(pattern);
    return path.substr(0, stem.size()) == stem && path.size() >= stem.size();
  }
  return pattern == path;
}

Status Policy::Verify(std::string_view path) const {
  for (const auto& d : deny) {
    if (PatternMatches(d, path)) return Status::NotAllowed();
  }
  for (const auto& a : allow) {
    if (PatternMatches(a, path)) return Status::Ok();
  }
  return Status::NotAllowed();
}

// This policy grants nothing `other` does not: each allow rule lies inside
// one of other's allow rules, and each of other's deny rules that cuts into
// what this policy allows is matched by one of this policy's deny rules.
bool Policy::IsSubset(const Policy& other) const {
  for (const auto& a : allow) {
    bool covered = false;
    for (const auto& b : other.allow) {
      if (Covers(b, a)) {
        covered = true;
        break;
      }
    }
    if (!covered) return false;
  }
  for (const auto& d : other.deny) {
    bool relevant = false;
    for (const auto& a : allow) {
      if (Overlaps(a, d)) {
        relevant = true;
        break;
      }
    }
    if (!relevant) continue;
    bool denied = false;
    for (const auto& own : deny) {
      if (Covers(own, d)) {
        denied = true;
        break;
      }
    }
    if (!denied) return false;
  }
  return true;
}

}  // namespace kes::identity
