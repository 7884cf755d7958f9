#include "server/system_info.h"

#include <malloc.h>
#include <sched.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

namespace kes::server {

SystemInfo ReadSystemInfo() {
  SystemInfo info;
  info.num_cpu = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  cpu_set_t set;
  CPU_ZERO(&set);
  info.num_cpu_used = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : info.num_cpu;

  struct mallinfo2 mi = mallinfo2();
  info.heap_used = mi.uordblks + mi.hblkhd;
  // glibc does not count live allocations; the number of mmapped blocks plus
  // in-use arena chunks is not available either, so report the allocated
  // bytes divided by a typical small-object size as an order of magnitude.
  info.heap_objects = info.heap_used / 64;

  // /proc/self/status: Threads and VmStk (kB).
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Threads:", 0) == 0) {
      std::string_view v(line);
      v.remove_prefix(8);
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
      std::from_chars(v.data(), v.data() + v.size(), info.num_threads);
    } else if (line.rfind("VmStk:", 0) == 0) {
      info.stack_used = std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;
    }
  }
  return info;
}

std::string_view GoOs() { return "linux"; }

std::string_view GoArch() {
#if defined(__x86_64__)
  return "amd64";
#elif defined(__aarch64__)
  return "arm64";
#elif defined(__i386__)
  return "386";
#elif defined(__arm__)
  return "arm";
#elif defined(__riscv) && __riscv_xlen == 64
  return "riscv64";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return "ppc64le";
#elif defined(__s390x__)
  return "s390x";
#else
  return "unknown";
#endif
}

}  // namespace kes::server
