// The etcd keystore against a real single-member etcd (Debian's etcd-server)
// on loopback ports: the shared keystore contract, the change feed that
// keeps other servers' caches coherent, and the behaviour with a dead
// endpoint first in the list.
#include "keystore/etcd/etcd_keystore.h"

#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../unit/keystore_contract.h"
#include "net/http_client.h"

extern char** environ;

namespace kes::keystore::etcd {
namespace {

using namespace std::chrono_literals;

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// One etcd member on loopback, its data in a fresh directory; killed at the end.
class EtcdMember {
 public:
  explicit EtcdMember(std::vector<std::string> extra = {}) {
    dir_ = std::filesystem::temp_directory_path() /
           ("kes-etcd-test-" + std::to_string(getpid()) + "-" + std::to_string(FreePort()));
    std::filesystem::create_directories(dir_);
    const int client = FreePort();
    const int peer = FreePort();
    url_ = "http://127.0.0.1:" + std::to_string(client);
    const std::string peer_url = "http://127.0.0.1:" + std::to_string(peer);
    std::vector<std::string> args = {"etcd",
                                     "--name=m",
                                     "--data-dir=" + (dir_ / "data").string(),
                                     "--listen-client-urls=" + url_,
                                     "--advertise-client-urls=" + url_,
                                     "--listen-peer-urls=" + peer_url,
                                     "--initial-advertise-peer-urls=" + peer_url,
                                     "--initial-cluster=m=" + peer_url,
                                     "--logger=zap",
                                     "--log-level=warn",
                                     "--log-outputs=" + (dir_ / "etcd.log").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawnp(&pid_, "etcd", nullptr, nullptr, argv.data(), environ) != 0) pid_ = -1;
  }
  ~EtcdMember() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Waits (bounded) until the member answers a status request.
  bool Ready() {
    if (pid_ <= 0) return false;
    net::HttpClient http;
    const auto until = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < until) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;  // exited: the flags or the ports are wrong
        return false;
      }
      net::HttpRequest req;
      req.method = "POST";
      req.url = *net::Url::Parse(url_ + "/v3/maintenance/status");
      req.body = "{}";
      auto r = http.Do(req);
      if (r.ok() && r->status == 200 && r->body.find("\"leader\"") != std::string::npos) {
        return true;
      }
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  const std::string& url() const { return url_; }

  // A JSON gateway call as the etcd root user would make it (auth set-up).
  bool Post(const std::string& path, const std::string& body, const std::string& token = "") {
    net::HttpClient http;
    net::HttpRequest req;
    req.method = "POST";
    req.url = *net::Url::Parse(url_ + path);
    req.body = body;
    if (!token.empty()) req.headers.emplace_back("Authorization", token);
    auto r = http.Do(req);
    return r.ok() && r->status == 200;
  }

 private:
  std::filesystem::path dir_;
  std::string url_;
  pid_t pid_ = -1;
};

// Records what a change feed reports.
class Recorder : public ChangeListener {
 public:
  void Changed(std::string_view name, int64_t revision) override {
    std::lock_guard lock(mu_);
    changed_[std::string(name)] = revision;
    cv_.notify_all();
  }
  void ChangedAll() override {}
  void Watching(bool up) override {
    std::lock_guard lock(mu_);
    up_ = up;
    cv_.notify_all();
  }
  bool WaitUp() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return up_; });
  }
  // The revision of the last change to `name`, or 0 if none came in time.
  int64_t WaitChanged(const std::string& name, int64_t after = 0) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, 10s, [&] { return changed_.count(name) > 0 && changed_[name] > after; });
    return changed_.count(name) > 0 ? changed_[name] : 0;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool up_ = false;
  std::map<std::string, int64_t> changed_;
};

class EtcdKeystoreTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(member_.Ready()) << "etcd did not start"; }

  std::unique_ptr<KeyStore> Open(std::vector<std::string> endpoints, std::string prefix = "kes/") {
    EtcdOptions o;
    o.endpoints = std::move(endpoints);
    o.prefix = std::move(prefix);
    auto ks = NewEtcdKeyStore(o);
    EXPECT_TRUE(ks.ok()) << ks.status().message();
    return ks.ok() ? std::move(*ks) : nullptr;
  }

  EtcdMember member_;
};

TEST_F(EtcdKeystoreTest, Contract) {
  auto ks = Open({member_.url()});
  ASSERT_NE(ks, nullptr);
  kes::testing::ExerciseContract(*ks);
}

TEST_F(EtcdKeystoreTest, PrefixesSeparateTenants) {
  auto a = Open({member_.url()}, "a/");
  auto b = Open({member_.url()}, "b/");
  ASSERT_TRUE(a->Create("k", "1", kNoDeadline).ok());
  EXPECT_EQ(b->Get("k", kNoDeadline).status(), Status::KeyNotFound());
  EXPECT_TRUE(b->Create("k", "2", kNoDeadline).ok());
  EXPECT_EQ(*a->Get("k", kNoDeadline), "1");
  EXPECT_EQ(a->List("", 0, kNoDeadline)->names, std::vector<std::string>{"k"});
}

// List reads ranges of 500 names: more than that takes several, in order.
TEST_F(EtcdKeystoreTest, ListPagesThroughSeveralRanges) {
  auto ks = Open({member_.url()}, "paged/");
  std::vector<std::string> want;
  for (int i = 0; i < 1001; ++i) {
    char name[16];
    std::snprintf(name, sizeof(name), "k%04d", i);
    want.emplace_back(name);
  }
  for (auto it = want.rbegin(); it != want.rend(); ++it) {
    ASSERT_TRUE(ks->Create(*it, "v", kNoDeadline).ok());
  }
  ASSERT_TRUE(ks->Create("other", "v", kNoDeadline).ok());
  auto all = ks->List("k", 0, kNoDeadline);
  ASSERT_TRUE(all.ok()) << all.status().message();
  EXPECT_EQ(all->names, want);
  EXPECT_TRUE(all->continue_at.empty());
  auto page = ks->List("k", 600, kNoDeadline);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->names.size(), 600u);
  EXPECT_EQ(page->names.back(), "k0599");
  EXPECT_EQ(page->continue_at, "k0600");
}

TEST_F(EtcdKeystoreTest, ADeadEndpointIsSkipped) {
  auto ks = Open({"http://127.0.0.1:" + std::to_string(FreePort()), member_.url()});
  ASSERT_TRUE(ks->Create("k", "v", kNoDeadline).ok());
  EXPECT_EQ(*ks->Get("k", kNoDeadline), "v");
  EXPECT_TRUE(ks->Status(kNoDeadline).ok());
}

TEST_F(EtcdKeystoreTest, UnreachableClusterIsUnreachable) {
  auto ks = Open({"http://127.0.0.1:" + std::to_string(FreePort())});
  EXPECT_EQ(ks->Get("k", DeadlineIn(5s)).status().code(), Code::kUnreachable);
  EXPECT_EQ(ks->Status(DeadlineIn(5s)).status().code(), Code::kUnreachable);
}

TEST_F(EtcdKeystoreTest, ChangeFeedReportsOtherWritersDeletesAndCreates) {
  auto watcher = Open({member_.url()});
  Recorder rec;
  watcher->Subscribe(&rec);
  ASSERT_TRUE(rec.WaitUp());
  auto writer = Open({member_.url()});
  ASSERT_TRUE(writer->Create("created", "v", kNoDeadline).ok());
  auto created = writer->CreateWithRevision("deleted", "v", kNoDeadline);
  ASSERT_TRUE(created.ok());
  EXPECT_GT(rec.WaitChanged("created"), 0);
  // Events carry the revisions Get and Create report (a delete its own, newer
  // one), which is what lets the cache order them against cached values.
  EXPECT_EQ(rec.WaitChanged("deleted"), *created);
  EXPECT_EQ(watcher->GetWithRevision("deleted", kNoDeadline)->revision, *created);
  // A create resent after a lost answer finds its own write, and its revision.
  EXPECT_EQ(writer->CreateWithRevision("deleted", "v", kNoDeadline).value(), *created);
  ASSERT_TRUE(writer->Delete("deleted", kNoDeadline).ok());
  EXPECT_GT(rec.WaitChanged("deleted", *created), *created);
  watcher->Close();  // ends the stream promptly
}

// etcd auth on, simple tokens living one second: the keystore logs in, and
// logs in again when its token has expired.
TEST(EtcdKeystoreAuth, LogsInAndRenewsAnExpiredToken) {
  EtcdMember member({"--auth-token=simple", "--auth-token-ttl=1"});
  ASSERT_TRUE(member.Ready());
  ASSERT_TRUE(member.Post("/v3/auth/user/add", R"({"name":"root","password":"rootpw"})"));
  ASSERT_TRUE(member.Post("/v3/auth/role/add", R"({"name":"root"})"));
  ASSERT_TRUE(member.Post("/v3/auth/user/grant", R"({"user":"root","role":"root"})"));
  ASSERT_TRUE(member.Post("/v3/auth/enable", "{}"));

  EtcdOptions o;
  o.endpoints = {member.url()};
  o.prefix = "kes/";
  auto anonymous = NewEtcdKeyStore(o);
  ASSERT_TRUE(anonymous.ok());
  EXPECT_FALSE((*anonymous)->Create("k", "v", kNoDeadline).ok());  // auth is really on

  o.username = "root";
  o.password = "rootpw";
  auto ks = NewEtcdKeyStore(o);
  ASSERT_TRUE(ks.ok());
  ASSERT_TRUE((*ks)->Create("k", "v", kNoDeadline).ok());
  // Past the token's TTL (etcd checks it every second or so).
  std::this_thread::sleep_for(3s);
  auto got = (*ks)->Get("k", kNoDeadline);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(*got, "v");

  o.password = "wrong";
  auto bad = NewEtcdKeyStore(o);
  ASSERT_TRUE(bad.ok());
  auto s = (*bad)->Get("k", kNoDeadline).status();
  EXPECT_NE(s.message().find("etcd: authenticate as 'root'"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace kes::keystore::etcd
