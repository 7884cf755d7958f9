// RandomBytes: pooled small draws must never repeat, not across refills of
// the per-thread block and not between a parent and its forked child.
#include "crypto/random.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <set>
#include <vector>

namespace kes::crypto {
namespace {

TEST(RandomPool, SmallDrawsAcrossManyRefillsAreDistinct) {
  std::set<std::vector<uint8_t>> seen;
  const std::vector<uint8_t> zero(60, 0);
  for (int i = 0; i < 1000; ++i) {  // 60 kB: ~15 refills of the 4 KiB block
    std::vector<uint8_t> b(60);
    ASSERT_TRUE(RandomBytes(b).ok());
    EXPECT_NE(b, zero);
    EXPECT_TRUE(seen.insert(b).second) << "repeated output at draw " << i;
  }
  std::vector<uint8_t> big(kPooledRandomMax + 1), big2(kPooledRandomMax + 1);
  ASSERT_TRUE(RandomBytes(big).ok());
  ASSERT_TRUE(RandomBytes(big2).ok());
  EXPECT_NE(big, big2);
}

TEST(RandomPool, ForkedChildNeverRepeatsTheParentsBytes) {
  std::array<uint8_t, 32> warm{};
  ASSERT_TRUE(RandomBytes(warm).ok());  // the parent's block is now part-used
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::array<uint8_t, 32> child{};
    const bool ok = RandomBytes(child).ok();
    ssize_t n = ok ? write(fds[1], child.data(), child.size()) : -1;
    _exit(n == static_cast<ssize_t>(child.size()) ? 0 : 1);
  }
  close(fds[1]);
  std::array<uint8_t, 32> parent{}, child{};
  ASSERT_TRUE(RandomBytes(parent).ok());
  size_t got = 0;
  while (got < child.size()) {
    ssize_t n = read(fds[0], child.data() + got, child.size() - got);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_EQ(got, child.size());
  EXPECT_NE(parent, child) << "parent and child drew the same pooled bytes";
}

}  // namespace
}  // namespace kes::crypto
