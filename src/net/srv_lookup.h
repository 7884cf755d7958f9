#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kes::net {

// One SRV answer: the target host (without the trailing dot) and its port.
struct SrvTarget {
  std::string host;
  uint16_t port = 0;
};

// Looks up the SRV record `_<service>._<proto>.<name>` with the system
// resolver (resolv.conf), bounded to a few seconds. Returns the answer with
// the lowest priority (the first such answer on ties), or nullopt when there
// is no usable answer or the lookup fails: callers then use `name` as is.
std::optional<SrvTarget> LookupSrv(std::string_view service, std::string_view proto,
                                   std::string_view name);

}  // namespace kes::net
