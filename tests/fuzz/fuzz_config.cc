// libFuzzer target: the server config loader (config/config.h): YAML
// parsing, ${ENV} expansion, every keystore section and all validation.
// Loading must never crash or throw, and every duration it accepts must
// print as text that parses back to the same duration (the server prints
// them in its banner and `kes` tools read them again).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view yaml(reinterpret_cast<const char*>(data), size);
  // A Vault Kubernetes `jwt:` holding a '/' is read as a file. Device and
  // kernel files could block or be endless; they are no config input.
  for (std::string_view dir : {"/dev", "/proc", "/sys"}) {
    if (yaml.find(dir) != std::string_view::npos) return 0;
  }
  auto config = kes::config::LoadConfigText(yaml);
  if (!config.ok()) return 0;
  const kes::config::CacheConfig& cache = config->cache;
  for (kes::config::Duration d : {cache.any, cache.unused, cache.offline}) {
    auto again = kes::config::ParseDuration(kes::config::FormatDuration(d));
    if (!again.ok() || *again != d) std::abort();
  }
  return 0;
}
