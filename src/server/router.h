// The route table of the KES API (api.md §3.1) and Go ServeMux-compatible
// request-target resolution (api.md §1.2): path cleaning with 301
// redirects, trailing-slash redirects for subtree routes, percent-decoding,
// 404 for unknown paths.
#pragma once

#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace kes::server {

enum class RouteId {
  kVersion,
  kReady,
  kStatus,
  kMetrics,
  kApi,
  kKeyCreate,
  kKeyImport,
  kKeyDescribe,
  kKeyList,
  kKeyDelete,
  kKeyGenerate,
  kKeyEncrypt,
  kKeyDecrypt,
  kKeyHmac,
  kKeyRotate,
  kKeyVersions,
  kKeyConfig,
  kKeyRewrap,
  kPolicyDescribe,
  kPolicyRead,
  kPolicyList,
  kIdentityDescribe,
  kIdentityList,
  kSelfDescribe,
  kLogError,
  kLogAudit,
  kKeyBulkDecrypt,  // api.md §6: removed upstream in 2023-10, still used by older MinIO
};
inline constexpr size_t kRouteCount = 27;

enum class AuthKind {
  kOpen,          // never authenticates (/version)
  kIdentifyOnly,  // identity if a certificate is present, no policy check
  kAuthenticated  // identity + admin/policy check
};

struct Route {
  RouteId id;
  std::string_view method;       // "GET", "PUT" (POST also accepted) or "DELETE"
  std::string_view path;         // as registered; subtree routes end with '/'
  size_t max_body;               // bytes
  std::chrono::seconds timeout;  // 0: none
  AuthKind auth;
  bool metered;        // counted in kes_http_request_* metrics
  bool listed = true;  // in GET /v1/api (upstream's current table)
  bool subtree() const { return !path.empty() && path.back() == '/'; }
};

// All 27 routes, in a fixed order (index == RouteId).
const std::array<Route, kRouteCount>& Routes();
inline const Route& RouteOf(RouteId id) { return Routes()[static_cast<size_t>(id)]; }
// The route registered under exactly `path` (as in the config's api: keys).
const Route* FindRouteByPath(std::string_view path);

// Outcome of resolving a request target.
struct Resolution {
  enum class Kind {
    kMatch,       // route + decoded path + resource
    kRedirect,    // 301 to `location`
    kNotFound,    // 404 page not found
    kBadRequest,  // malformed target (net/http answers "400 Bad Request")
  };
  Kind kind = Kind::kNotFound;
  const Route* route = nullptr;
  std::string path;      // percent-decoded path (policy matching uses it)
  std::string resource;  // decoded path after the route's prefix
  std::string location;  // kRedirect: Location header value
};

// Resolves an origin-form request target ("/v1/key/list/a%2A?x=1").
Resolution ResolveTarget(std::string_view target);

// Percent-decodes a URL path (no '+' handling). nullopt on a bad escape.
std::optional<std::string> PercentDecode(std::string_view escaped);
// Go's path.Clean.
std::string CleanPath(std::string_view path);

}  // namespace kes::server
