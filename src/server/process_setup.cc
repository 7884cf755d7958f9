#include "server/process_setup.h"

#include <sys/prctl.h>
#include <sys/resource.h>

namespace kes::server {

void HardenProcess() {
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  const struct rlimit no_core = {0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);
}

void RaiseOpenFileLimit() {
  struct rlimit rl {};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max) return;
  rl.rlim_cur = rl.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &rl);
}

}  // namespace kes::server
