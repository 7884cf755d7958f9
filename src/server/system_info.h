// Process and host figures reported by /v1/status and /v1/metrics, named
// after Go's runtime fields (api.md §3.4.2).
#pragma once

#include <cstdint>
#include <string_view>

namespace kes::server {

struct SystemInfo {
  int num_cpu = 0;            // logical CPUs online
  int num_cpu_used = 0;       // CPUs in the process's affinity mask
  int num_threads = 0;        // threads of this process
  uint64_t heap_used = 0;     // bytes allocated by malloc and still in use
  uint64_t heap_objects = 0;  // malloc chunks in use (approximation, see .cc)
  uint64_t stack_used = 0;    // bytes of stack mappings
};

SystemInfo ReadSystemInfo();

// Go's GOOS / GOARCH spelling of this build's platform.
std::string_view GoOs();
std::string_view GoArch();

}  // namespace kes::server
