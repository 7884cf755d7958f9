#include "server/router.h"

#include <vector>

namespace kes::server {
namespace {

using std::chrono::seconds;
constexpr size_t kMB = 1000000;

constexpr std::array<Route, kRouteCount> kRoutes = {{
    {RouteId::kVersion, "GET", "/version", 0, seconds(10), AuthKind::kOpen, false},
    {RouteId::kReady, "GET", "/v1/ready", 0, seconds(15), AuthKind::kAuthenticated, false},
    {RouteId::kStatus, "GET", "/v1/status", 0, seconds(15), AuthKind::kAuthenticated, false},
    {RouteId::kMetrics, "GET", "/v1/metrics", 0, seconds(15), AuthKind::kAuthenticated, false},
    {RouteId::kApi, "GET", "/v1/api", 0, seconds(10), AuthKind::kAuthenticated, false},
    {RouteId::kKeyCreate, "PUT", "/v1/key/create/", 0, seconds(15), AuthKind::kAuthenticated, true},
    {RouteId::kKeyImport, "PUT", "/v1/key/import/", kMB, seconds(15), AuthKind::kAuthenticated,
     true},
    {RouteId::kKeyDescribe, "GET", "/v1/key/describe/", 0, seconds(15), AuthKind::kAuthenticated,
     true},
    {RouteId::kKeyList, "GET", "/v1/key/list/", 0, seconds(15), AuthKind::kAuthenticated, true},
    {RouteId::kKeyDelete, "DELETE", "/v1/key/delete/", 0, seconds(15), AuthKind::kAuthenticated,
     true},
    {RouteId::kKeyGenerate, "PUT", "/v1/key/generate/", kMB, seconds(15), AuthKind::kAuthenticated,
     true},
    {RouteId::kKeyEncrypt, "PUT", "/v1/key/encrypt/", kMB, seconds(15), AuthKind::kAuthenticated,
     true},
    {RouteId::kKeyDecrypt, "PUT", "/v1/key/decrypt/", kMB, seconds(15), AuthKind::kAuthenticated,
     true},
    {RouteId::kKeyHmac, "PUT", "/v1/key/hmac/", kMB, seconds(15), AuthKind::kAuthenticated, true},
    // kes-cpp key versions (rotation.md §6.7).
    {RouteId::kKeyRotate, "PUT", "/v1/key/rotate/", 0, seconds(15), AuthKind::kAuthenticated, true},
    {RouteId::kKeyVersions, "GET", "/v1/key/versions/", 0, seconds(15), AuthKind::kAuthenticated,
     true},
    {RouteId::kKeyConfig, "PUT", "/v1/key/config/", kMB, seconds(15), AuthKind::kAuthenticated,
     true},
    {RouteId::kKeyRewrap, "PUT", "/v1/key/rewrap/", kMB, seconds(15), AuthKind::kAuthenticated,
     true},
    {RouteId::kPolicyDescribe, "GET", "/v1/policy/describe/", 0, seconds(15),
     AuthKind::kAuthenticated, true},
    {RouteId::kPolicyRead, "GET", "/v1/policy/read/", 0, seconds(15), AuthKind::kAuthenticated,
     true},
    {RouteId::kPolicyList, "GET", "/v1/policy/list/", 0, seconds(15), AuthKind::kAuthenticated,
     true},
    {RouteId::kIdentityDescribe, "GET", "/v1/identity/describe/", 0, seconds(15),
     AuthKind::kAuthenticated, true},
    {RouteId::kIdentityList, "GET", "/v1/identity/list/", 0, seconds(15), AuthKind::kAuthenticated,
     true},
    {RouteId::kSelfDescribe, "GET", "/v1/identity/self/describe", 0, seconds(15),
     AuthKind::kIdentifyOnly, true},
    {RouteId::kLogError, "GET", "/v1/log/error", 0, seconds(0), AuthKind::kAuthenticated, false},
    {RouteId::kLogAudit, "GET", "/v1/log/audit", 0, seconds(0), AuthKind::kAuthenticated, false},
    {RouteId::kKeyBulkDecrypt, "PUT", "/v1/key/bulk/decrypt/", kMB, seconds(15),
     AuthKind::kAuthenticated, true, /*listed=*/false},
}};

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Go's shouldEscape(c, encodePath).
bool ShouldEscapeInPath(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return false;
  switch (c) {
    case '-':
    case '_':
    case '.':
    case '~':
    case '$':
    case '&':
    case '+':
    case ',':
    case '/':
    case ':':
    case ';':
    case '=':
    case '@':
      return false;
    default:
      return true;
  }
}

// Go's url.URL{Path: p}.EscapedPath().
std::string EscapePath(std::string_view p) {
  static constexpr char kUpperHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(p.size());
  for (unsigned char c : p) {
    if (ShouldEscapeInPath(c)) {
      out += '%';
      out += kUpperHex[c >> 4];
      out += kUpperHex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// ServeMux's cleanPath: leading '/', path.Clean, trailing slash kept.
// Whether MuxCleanPath(p) == p: rooted, and no empty (but a trailing), "."
// or ".." segment. Nearly every request is, and then needs no copy.
bool IsMuxClean(std::string_view p) {
  if (p.empty() || p[0] != '/') return false;
  size_t i = 1;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    const std::string_view seg = p.substr(i, j - i);
    if (seg == "." || seg == ".." || (seg.empty() && j != p.size())) return false;
    i = j + 1;
  }
  return true;
}

std::string MuxCleanPath(std::string_view p) {
  if (p.empty()) return "/";
  std::string withSlash;
  if (p[0] != '/') {
    withSlash = "/";
    withSlash += p;
    p = withSlash;
  }
  std::string np = CleanPath(p);
  if (p.back() == '/' && np != "/") np += '/';
  return np;
}

// Whether the escaped, clean `path` matches `route`: literal segments are
// compared after unescaping each segment, as Go's routing tree does. On a
// match of a subtree route, `*rest_escaped` is the escaped remainder.
bool MatchRoute(const Route& route, std::string_view path, std::string_view* rest_escaped,
                bool* exact) {
  std::string_view pattern = route.path;
  size_t pi = 1, si = 1;  // both start with '/'
  if (path.empty() || path[0] != '/') return false;
  while (pi < pattern.size()) {
    size_t pend = pattern.find('/', pi);
    if (pend == std::string_view::npos) pend = pattern.size();
    std::string_view want = pattern.substr(pi, pend - pi);
    size_t send = path.find('/', si);
    if (send == std::string_view::npos) send = path.size();
    const std::string_view seg = path.substr(si, send - si);
    if (seg.find('%') == std::string_view::npos) {
      if (seg != want) return false;
    } else if (auto got = PercentDecode(seg); !got || *got != want) {
      return false;
    }
    if (pend == pattern.size()) {
      // Exact pattern: the path must end here.
      if (send != path.size()) return false;
      *exact = true;
      return true;
    }
    // Pattern continues with '/': the path must too.
    if (send == path.size()) return false;
    pi = pend + 1;
    si = send + 1;
    if (pi == pattern.size()) {  // subtree: the rest is the resource
      *rest_escaped = path.substr(si);
      *exact = rest_escaped->empty();
      return true;
    }
  }
  return false;
}

const Route* Match(std::string_view path, std::string_view* rest, bool* exact) {
  if (path.find('%') == std::string_view::npos) {
    // Nothing to unescape: segment-wise matching is a plain comparison with
    // the pattern (equal, or a prefix for a subtree route).
    for (const Route& r : kRoutes) {
      if (r.subtree() ? path.starts_with(r.path) : path == r.path) {
        *rest = r.subtree() ? path.substr(r.path.size()) : std::string_view();
        *exact = !r.subtree() || rest->empty();
        return &r;
      }
    }
    return nullptr;
  }
  for (const Route& r : kRoutes) {
    if (MatchRoute(r, path, rest, exact)) return &r;
  }
  return nullptr;
}

}  // namespace

const std::array<Route, kRouteCount>& Routes() { return kRoutes; }

const Route* FindRouteByPath(std::string_view path) {
  for (const Route& r : kRoutes) {
    if (r.path == path) return &r;
  }
  return nullptr;
}

std::optional<std::string> PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    int hi = HexValue(s[i + 1]), lo = HexValue(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

std::string CleanPath(std::string_view path) {
  if (path.empty()) return ".";
  const bool rooted = path[0] == '/';
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view seg = path.substr(i, j - i);
    i = j + 1;
    if (seg.empty() || seg == ".") continue;
    if (seg == "..") {
      if (!out.empty() && out.back() != "..") {
        out.pop_back();
      } else if (!rooted) {
        out.push_back(seg);
      }
      continue;
    }
    out.push_back(seg);
  }
  std::string result = rooted ? "/" : "";
  for (size_t k = 0; k < out.size(); ++k) {
    if (k > 0) result += '/';
    result += out[k];
  }
  if (result.empty()) return ".";
  return result;
}

Resolution ResolveTarget(std::string_view target) {
  Resolution res;
  // Absolute-form targets ("https://host/p") are accepted like net/http does.
  for (std::string_view scheme : {"http://", "https://"}) {
    if (target.substr(0, scheme.size()) == scheme) {
      size_t slash = target.find('/', scheme.size());
      target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
    }
  }
  if (target.empty() || target[0] != '/') {
    res.kind = Resolution::Kind::kBadRequest;
    return res;
  }
  std::string_view escaped = target, query;
  if (size_t q = target.find('?'); q != std::string_view::npos) {
    escaped = target.substr(0, q);
    query = target.substr(q + 1);
  }
  auto decoded = PercentDecode(escaped);
  if (!decoded) {
    res.kind = Resolution::Kind::kBadRequest;
    return res;
  }
  std::string clean_copy;
  const std::string_view clean =
      IsMuxClean(escaped) ? escaped : std::string_view(clean_copy = MuxCleanPath(escaped));

  std::string_view rest;
  bool exact = false;
  const Route* route = Match(clean, &rest, &exact);
  if (route == nullptr && clean.back() != '/') {
    // A subtree route requested without its trailing slash.
    std::string with_slash(clean);
    with_slash += '/';
    bool exact2 = false;
    std::string_view rest2;
    if (Match(with_slash, &rest2, &exact2) != nullptr && exact2) {
      res.kind = Resolution::Kind::kRedirect;
      res.location = EscapePath(MuxCleanPath(*decoded) + "/");
      if (!query.empty()) {
        res.location += '?';
        res.location += query;
      }
      return res;
    }
  }
  if (clean != escaped) {
    res.kind = Resolution::Kind::kRedirect;
    res.location = EscapePath(clean);
    if (!query.empty()) {
      res.location += '?';
      res.location += query;
    }
    return res;
  }
  if (route == nullptr) {
    res.kind = Resolution::Kind::kNotFound;
    return res;
  }
  res.kind = Resolution::Kind::kMatch;
  res.route = route;
  res.path = std::move(*decoded);
  if (route->subtree()) {
    res.resource = PercentDecode(rest).value_or(std::string());
  }
  return res;
}

}  // namespace kes::server
