// libFuzzer target: request-target resolution (server/router.h, api.md
// §1.2). Checks, besides "no crash": Go's path.Clean is idempotent; a match
// names a route whose path prefixes the decoded path; a redirect goes to a
// target that resolves without another redirect (no 301 loops).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "server/router.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using kes::server::Resolution;
  const std::string_view target(reinterpret_cast<const char*>(data), size);

  const std::string clean = kes::server::CleanPath(target);
  if (kes::server::CleanPath(clean) != clean) std::abort();
  (void)kes::server::PercentDecode(target);

  const Resolution r = kes::server::ResolveTarget(target);
  switch (r.kind) {
    case Resolution::Kind::kMatch:
      if (r.route == nullptr) std::abort();
      if (r.route->subtree() ? !r.path.starts_with(r.route->path) : r.path != r.route->path) {
        std::abort();
      }
      if (!r.path.ends_with(r.resource)) std::abort();
      break;
    case Resolution::Kind::kRedirect: {
      if (r.location.empty() || r.location[0] != '/') std::abort();
      const Resolution again = kes::server::ResolveTarget(r.location);
      if (again.kind == Resolution::Kind::kRedirect) std::abort();
      break;
    }
    case Resolution::Kind::kNotFound:
    case Resolution::Kind::kBadRequest:
      break;
  }
  return 0;
}
