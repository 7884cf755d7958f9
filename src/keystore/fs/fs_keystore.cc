#include "keystore/fs/fs_keystore.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <mutex>
#include <stop_token>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "common/os.h"
#include "crypto/random.h"
#include "crypto/secret_bytes.h"
#include "keystore/list.h"

namespace kes::keystore::fs {
namespace {

// Stored values are small; upstream reads at most 1 MiB.
constexpr size_t kMaxValueSize = 1 << 20;
// Temporary files start with '.', which no key name contains.
constexpr std::string_view kTempPrefix = ".kes-tmp-";

Status OsError(std::string_view op, const std::string& path, int err) {
  return Status::Unavailable(std::string(op) + " " + path + ": " + GoErrnoText(err));
}

// Closes a file descriptor on scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int Release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return OsError("write", path, errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

Status MakeDirs(const std::string& path) {
  // Create each missing component from the top.
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    const std::string part = path.substr(0, pos);
    if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) return OsError("mkdir", part, errno);
  }
  return Status::Ok();
}

class FsKeyStore final : public KeyStore {
 public:
  explicit FsKeyStore(std::string dir) : dir_(std::move(dir)) {}
  ~FsKeyStore() override { StopCleanup(); }

  // Runs RemoveStaleTemporaries on a thread of its own, a few seconds after
  // Open: the scan reads the whole directory (one entry per key) and would
  // otherwise compete with start-up and the first requests even off the
  // start path (a server pinned to one CPU). It only removes files older
  // than any create in progress, so nothing waits for it.
  void StartCleanup() {
    // The thread must never take a process-directed signal (the server
    // waits for them with sigwait), so it starts with all of them blocked.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    try {
      cleanup_ = std::jthread([this](const std::stop_token& stop) {
        {
          std::unique_lock lock(delay_mu_);
          delay_cv_.wait_for(lock, stop, kCleanupDelay, [this] { return run_now_; });
        }
        if (!stop.stop_requested()) RemoveStaleTemporaries(stop);
      });
    } catch (const std::system_error&) {
      RemoveStaleTemporaries(std::stop_token());  // no thread to spare: scan now
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
  // Starts the clean-up now if it is still waiting, and waits for its end.
  void WaitForCleanup() {
    {
      std::lock_guard lock(delay_mu_);
      run_now_ = true;
    }
    delay_cv_.notify_all();
    JoinCleanup();
  }

  std::string DisplayName() const override { return "Filesystem: " + dir_; }

  Result<KeyStoreState> Status(Deadline deadline) override {
    const auto start = std::chrono::steady_clock::now();
    struct stat st {};
    if (::stat(dir_.c_str(), &st) != 0) {
      return kes::Status::Unreachable("kes: keystore unreachable: stat " + dir_ + ": " +
                                      GoErrnoText(errno));
    }
    if (!S_ISDIR(st.st_mode)) {
      return kes::Status::Unreachable("kes: keystore unreachable: fs: '" + dir_ +
                                      "' is not a directory");
    }
    if (::access(dir_.c_str(), R_OK | W_OK | X_OK) != 0) {
      return kes::Status::Unreachable("kes: keystore unreachable: access " + dir_ + ": " +
                                      GoErrnoText(errno));
    }
    return KeyStoreState{std::chrono::steady_clock::now() - start};
  }

  kes::Status Create(std::string_view name, std::string_view value, Deadline deadline) override {
    KES_TRY(CheckName(name));
    const std::string path = PathOf(name);
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) return kes::Status::KeyExists();

    std::array<uint8_t, 12> rnd{};
    KES_TRY(crypto::RandomBytes(rnd));
    std::string tmp = dir_ + "/" + std::string(kTempPrefix);
    static constexpr char kHex[] = "0123456789abcdef";
    for (uint8_t b : rnd) {
      tmp.push_back(kHex[b >> 4]);
      tmp.push_back(kHex[b & 15]);
    }

    Fd fd(::open(tmp.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600));
    if (fd.get() < 0) return MissingDirOr(OsError("open", path, errno));
    kes::Status s = WriteAll(fd.get(), value, path);
    if (s.ok() && ::fsync(fd.get()) != 0) s = OsError("sync", path, errno);
    if (s.ok() && ::close(fd.Release()) != 0) s = OsError("close", path, errno);
    if (s.ok() && ::link(tmp.c_str(), path.c_str()) != 0) {
      s = errno == EEXIST ? kes::Status::KeyExists() : OsError("link", path, errno);
    }
    ::unlink(tmp.c_str());
    KES_TRY(s);
    return SyncDir();
  }

  Result<std::string> Get(std::string_view name, Deadline deadline) override {
    KES_TRY(CheckName(name));
    const std::string path = PathOf(name);
    // Only a regular file is a key. O_NONBLOCK keeps a FIFO from blocking
    // the open (and with it a keystore worker); O_NOFOLLOW refuses a
    // symlink, which List does not show either.
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
    if (fd.get() < 0) {
      if (errno == ENOENT || errno == ELOOP) return MissingDirOr(kes::Status::KeyNotFound());
      return OsError("open", path, errno);
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return OsError("stat", path, errno);
    if (!S_ISREG(st.st_mode)) return kes::Status::KeyNotFound();
    std::string value;
    std::array<char, 4096> buf;
    for (;;) {
      const ssize_t n = ::read(fd.get(), buf.data(), buf.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        crypto::Zeroize(value.data(), value.size());
        return OsError("read", path, errno);
      }
      if (n == 0) break;
      if (value.size() + static_cast<size_t>(n) > kMaxValueSize) {
        crypto::Zeroize(value.data(), value.size());
        return kes::Status::Unavailable("fs: key '" + std::string(name) + "' exceeds 1 MiB");
      }
      value.append(buf.data(), static_cast<size_t>(n));
    }
    crypto::Zeroize(buf.data(), buf.size());
    return value;
  }

  kes::Status Delete(std::string_view name, Deadline deadline) override {
    KES_TRY(CheckName(name));
    const std::string path = PathOf(name);
    if (::unlink(path.c_str()) != 0) {
      if (errno == ENOENT) return MissingDirOr(kes::Status::KeyNotFound());
      return OsError("remove", path, errno);
    }
    return SyncDir();
  }

  Result<ListPage> List(std::string_view prefix, int limit, Deadline deadline) override {
    DIR* d = ::opendir(dir_.c_str());
    if (d == nullptr) {
      return kes::Status::Unreachable("kes: keystore unreachable: open " + dir_ + ": " +
                                      GoErrnoText(errno));
    }
    std::vector<std::string> names;
    int err = 0;
    for (;;) {
      if (names.size() % 1024 == 1023 && Expired(deadline)) {
        ::closedir(d);
        return DeadlineExceeded();
      }
      // readdir signals its own errors only through errno, which the
      // fstatat below may have set for an earlier entry.
      errno = 0;
      const dirent* e = ::readdir(d);
      if (e == nullptr) {
        err = errno;
        break;
      }
      const std::string_view name = e->d_name;
      // Hidden files (temporaries, editor backups) and anything that is not a
      // regular file (a symlink, a FIFO, a directory) can never be read as a key.
      if (!IsValidName(name)) continue;
      if (e->d_type != DT_REG) {
        if (e->d_type != DT_UNKNOWN) continue;
        struct stat st {};
        if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(st.st_mode)) {
          continue;
        }
      }
      names.emplace_back(name);
    }
    ::closedir(d);
    if (err != 0) return OsError("readdir", dir_, err);
    return ListAll(std::move(names), prefix, limit);
  }

  void Close() override { StopCleanup(); }

 private:
  // Removes temporaries left behind by a crash during Create. Recent ones
  // may belong to another process writing the same directory right now.
  void RemoveStaleTemporaries(const std::stop_token& stop) {
    DIR* d = ::opendir(dir_.c_str());
    if (d == nullptr) return;
    const time_t cutoff = ::time(nullptr) - 600;
    while (const dirent* e = ::readdir(d)) {
      if (stop.stop_requested()) break;
      if (!std::string_view(e->d_name).starts_with(kTempPrefix)) continue;
      struct stat st {};
      if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
          st.st_mtime < cutoff) {
        ::unlinkat(::dirfd(d), e->d_name, 0);
      }
    }
    ::closedir(d);
  }

  // Abandons a clean-up still running (it resumes at the next start).
  void StopCleanup() {
    cleanup_.request_stop();  // also ends the initial delay
    JoinCleanup();
  }

  void JoinCleanup() {
    std::lock_guard lock(join_mu_);
    if (cleanup_.joinable()) cleanup_.join();
  }

  std::string PathOf(std::string_view name) const { return dir_ + "/" + std::string(name); }

  static kes::Status CheckName(std::string_view name) {
    if (!IsValidName(name))
      return kes::Status::Unavailable("fs: key name contains invalid character");
    return kes::Status::Ok();
  }

  // A vanished directory is an unreachable keystore, not a missing key.
  kes::Status MissingDirOr(kes::Status otherwise) const {
    struct stat st {};
    const int err = ::stat(dir_.c_str(), &st) != 0 ? errno : (S_ISDIR(st.st_mode) ? 0 : ENOTDIR);
    if (err != 0) {
      return kes::Status::Unreachable("kes: keystore unreachable: stat " + dir_ + ": " +
                                      GoErrnoText(err));
    }
    return otherwise;
  }

  // Makes a created or removed name durable.
  kes::Status SyncDir() const {
    Fd fd(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.get() < 0) return OsError("open", dir_, errno);
    if (::fsync(fd.get()) != 0) return OsError("sync", dir_, errno);
    return kes::Status::Ok();
  }

  const std::string dir_;
  static constexpr std::chrono::seconds kCleanupDelay{3};
  std::mutex delay_mu_;
  std::condition_variable_any delay_cv_;
  bool run_now_ = false;  // guarded by delay_mu_
  std::mutex join_mu_;    // serializes joins of cleanup_
  std::jthread cleanup_;  // last: stopped and joined before the members it uses go
};

}  // namespace

bool IsValidName(std::string_view name) {
  return !name.empty() && name.find_first_of("/\\.") == std::string_view::npos;
}

Result<std::unique_ptr<KeyStore>> Open(const std::string& path) {
  if (path.empty()) return Status::Invalid("fs: no path specified");
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) return OsError("stat", path, errno);
    KES_TRY(MakeDirs(path));
  } else if (!S_ISDIR(st.st_mode)) {
    return Status::Invalid("fs: '" + path + "' is not a directory");
  }
  auto store = std::make_unique<FsKeyStore>(path);
  store->StartCleanup();
  return std::unique_ptr<KeyStore>(std::move(store));
}

void WaitForStartupCleanup(KeyStore& store) {
  if (auto* fs = dynamic_cast<FsKeyStore*>(&store)) fs->WaitForCleanup();
}

}  // namespace kes::keystore::fs
