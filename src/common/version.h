// Build identity reported by GET /version, /v1/status and `kes --version`.
#pragma once

#include <string_view>

namespace kes {

// Upstream's format: the commit time of the build, "2025-05-27T05-04-48Z";
// "<unknown>" when the build had no git metadata.
std::string_view BuildVersion();
// Full commit hash, or "<unknown>".
std::string_view BuildCommit();

}  // namespace kes
