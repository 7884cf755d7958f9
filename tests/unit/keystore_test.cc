// Keystores and the key cache (spec keystores.md §1-3, §5): listing helper
// and fs name vectors, in-memory and filesystem backends, cache semantics.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>

#include "crypto/key_version.h"
#include "keystore/cache.h"
#include "keystore/fs/fs_keystore.h"
#include "keystore/list.h"
#include "keystore/memory/memory_keystore.h"
#include "keystore_contract.h"
#include "vectors.h"

namespace kes::keystore {
namespace {

namespace stdfs = std::filesystem;
using kes::testing::kStoredKey;
using std::chrono::milliseconds;
using std::chrono::seconds;

stdfs::path TempDir() {
  std::string tmpl = (stdfs::temp_directory_path() / "kes-keystore-test-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

std::string ReadFile(const stdfs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteFile(const stdfs::path& p, std::string_view content) {
  std::ofstream out(p, std::ios::binary);
  out << content;
}

using kes::testing::Eventually;

// ---- vectors ----------------------------------------------------------------

TEST(KeystoreList, Vectors) {
  const auto& group = kes::testing::VectorGroup("keystore_list");
  ASSERT_FALSE(group.empty());
  for (const auto& v : group) {
    auto names = v.at("input").at("names").get<std::vector<std::string>>();
    const auto prefix = v.at("input").at("prefix").get<std::string>();
    const int n = v.at("input").at("n").get<int>();
    ListPage page = ListNames(names, prefix, n);
    EXPECT_EQ(page.names, v.at("expected").at("list").get<std::vector<std::string>>())
        << v.at("id");
    EXPECT_EQ(page.continue_at, v.at("expected").at("continue_at").get<std::string>())
        << v.at("id");
  }
}

TEST(KeystoreList, UpstreamPageEdges) {
  std::vector<std::string> names;
  for (int i = 0; i < 1100; ++i) names.push_back("k" + std::to_string(10000 + i));
  // No prefix: the first 1024 plus the next name.
  ListPage page = ListNames(names, "", 0);
  ASSERT_EQ(page.names.size(), 1024u);
  EXPECT_EQ(page.continue_at, "k11024");
  // With a prefix the walk stops at index 1024.
  page = ListNames(names, "k1", -1);
  ASSERT_EQ(page.names.size(), 1024u);
  EXPECT_EQ(page.continue_at, "k11024");
  // Exactly 1025 matching names: the limit falls on the last one, all are returned.
  names.resize(1025);
  page = ListNames(names, "k1", 0);
  EXPECT_EQ(page.names.size(), 1025u);
  EXPECT_EQ(page.continue_at, "");
  // Prefix matching nothing.
  EXPECT_TRUE(ListNames(names, "zzz", 0).names.empty());
  // ListAll with limit <= 0 returns everything, filtered and sorted.
  names.push_back("a");
  page = ListAll(names, "k", 0);
  EXPECT_EQ(page.names.size(), 1025u);
  EXPECT_EQ(page.continue_at, "");
  EXPECT_EQ(ListAll(names, "", -1).names.front(), "a");
}

TEST(FsKeystore, ValidNameVectors) {
  const auto& group = kes::testing::VectorGroup("fs_keystore_valid_name");
  ASSERT_FALSE(group.empty());
  for (const auto& v : group) {
    const auto name = v.at("input").at("name").get<std::string>();
    EXPECT_EQ(fs::IsValidName(name), v.at("expected").at("valid").get<bool>()) << v.at("id");
  }
}

// ---- shared backend contract ------------------------------------------------------

TEST(MemoryKeystore, Contract) {
  auto ks = NewMemoryKeyStore();
  EXPECT_EQ(ks->DisplayName(), "In Memory");
  auto st = ks->Status(kNoDeadline);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->latency, milliseconds(1));
  kes::testing::ExerciseContract(*ks);
}

// ---- filesystem keystore -------------------------------------------------------------

class FsKeystoreTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = TempDir(); }
  void TearDown() override { stdfs::remove_all(dir_); }
  std::unique_ptr<KeyStore> OpenAt(const stdfs::path& p) {
    auto r = fs::Open(p.string());
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? std::move(r).value() : nullptr;
  }
  stdfs::path dir_;
};

TEST_F(FsKeystoreTest, Contract) {
  auto ks = OpenAt(dir_ / "keys");
  ASSERT_NE(ks, nullptr);
  kes::testing::ExerciseContract(*ks);
}

TEST_F(FsKeystoreTest, CreatesDirectoryWithParentsAndPrivateModes) {
  const stdfs::path keys = dir_ / "a" / "b" / "keys";
  auto ks = OpenAt(keys);
  ASSERT_NE(ks, nullptr);
  EXPECT_EQ(ks->DisplayName(), "Filesystem: " + keys.string());
  struct stat st {};
  ASSERT_EQ(::stat(keys.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_TRUE(ks->Create("k1", kStoredKey, kNoDeadline).ok());
  ASSERT_EQ(::stat((keys / "k1").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // Upstream layout: file name = key name, content = value, no newline.
  EXPECT_EQ(ReadFile(keys / "k1"), kStoredKey);
  // Nothing else (no temporaries) is left in the directory.
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : stdfs::directory_iterator(keys)) ++entries;
  EXPECT_EQ(entries, 1u);
}

TEST_F(FsKeystoreTest, PathThatIsAFileIsRejected) {
  WriteFile(dir_ / "file", "x");
  auto r = fs::Open((dir_ / "file").string());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "fs: '" + (dir_ / "file").string() + "' is not a directory");
}

TEST_F(FsKeystoreTest, ServesADirectoryWrittenByUpstream) {
  // Files as upstream writes them: one per key, every stored format.
  const auto& group = kes::testing::VectorGroup("key_version_parse");
  std::vector<std::pair<std::string, std::string>> keys;
  for (const auto& v : group) {
    if (v.at("expected").at("should_fail").get<bool>()) continue;
    const std::string name = "key-" + std::to_string(keys.size());
    keys.emplace_back(name, v.at("input").at("stored_value_text").get<std::string>());
    WriteFile(dir_ / name, keys.back().second);
  }
  ASSERT_FALSE(keys.empty());
  auto ks = OpenAt(dir_);
  ASSERT_NE(ks, nullptr);
  for (const auto& [name, value] : keys) {
    auto got = ks->Get(name, kNoDeadline);
    ASSERT_TRUE(got.ok()) << name;
    EXPECT_EQ(*got, value);
  }
  // Through the cache every one of them parses.
  KeyCache cache(std::move(ks), CacheOptions{});
  for (const auto& [name, value] : keys) {
    auto key = cache.Get(name, kNoDeadline);
    ASSERT_TRUE(key.ok()) << name << ": " << key.status().message();
    EXPECT_EQ(cache.TryGet(name), *key);
  }
  auto list = cache.List("key-", kNoDeadline);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->names.size(), keys.size());
}

TEST_F(FsKeystoreTest, AFileWeWriteIsTheBytesWeWereGiven) {
  auto ks = OpenAt(dir_);
  ASSERT_NE(ks, nullptr);
  auto kv = crypto::ParseKeyVersion(kStoredKey);
  ASSERT_TRUE(kv.ok()) << kv.status().message();
  KeyCache cache(std::move(ks), CacheOptions{});
  ASSERT_TRUE(cache.Create("created", *kv, kNoDeadline).ok());
  // Upstream reads it back: it is the base64 protobuf text, nothing more.
  auto reparsed = crypto::ParseKeyVersion(ReadFile(dir_ / "created"));
  ASSERT_TRUE(reparsed.ok()) << reparsed.status().message();
  EXPECT_EQ(reparsed->created_by, "disabled");
  EXPECT_EQ(ReadFile(dir_ / "created").find('\n'), std::string::npos);
}

TEST_F(FsKeystoreTest, InvalidAndTraversalNamesRejected) {
  auto ks = OpenAt(dir_ / "keys");
  ASSERT_NE(ks, nullptr);
  WriteFile(dir_ / "outside", "secret");
  for (const char* bad : {"", ".", "..", "../outside", "a/b", "a\\b", ".hidden", "my.key"}) {
    EXPECT_EQ(ks->Create(bad, "v", kNoDeadline).message(),
              "fs: key name contains invalid character")
        << bad;
    EXPECT_EQ(ks->Get(bad, kNoDeadline).status().message(),
              "fs: key name contains invalid character")
        << bad;
    EXPECT_EQ(ks->Delete(bad, kNoDeadline).message(), "fs: key name contains invalid character")
        << bad;
  }
  EXPECT_TRUE(stdfs::exists(dir_ / "outside"));
}

TEST_F(FsKeystoreTest, ConcurrentCreatesOfOneNameHaveExactlyOneWinner) {
  auto ks = OpenAt(dir_);
  ASSERT_NE(ks, nullptr);
  constexpr int kThreads = 50;
  std::atomic<int> ok{0}, exists{0}, other{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      while (!go.load()) std::this_thread::yield();
      Status s = ks->Create("contested", "value-" + std::to_string(i), kNoDeadline);
      if (s.ok())
        ++ok;
      else if (s == Status::KeyExists())
        ++exists;
      else
        ++other;
    });
  }
  go = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(exists.load(), kThreads - 1);
  EXPECT_EQ(other.load(), 0);
  // The stored value is exactly one writer's, complete.
  EXPECT_TRUE(ReadFile(dir_ / "contested").starts_with("value-"));
  auto list = ks->List("", 0, kNoDeadline);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->names, std::vector<std::string>{"contested"});
}

TEST_F(FsKeystoreTest, ListIgnoresHiddenFilesAndDirectories) {
  auto ks = OpenAt(dir_);
  ASSERT_NE(ks, nullptr);
  ASSERT_TRUE(ks->Create("b", "1", kNoDeadline).ok());
  ASSERT_TRUE(ks->Create("a", "2", kNoDeadline).ok());
  WriteFile(dir_ / ".kes-tmp-0123", "partial");
  WriteFile(dir_ / ".DS_Store", "x");
  stdfs::create_directory(dir_ / "subdir");
  auto list = ks->List("", 0, kNoDeadline);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->names, (std::vector<std::string>{"a", "b"}));
}

TEST_F(FsKeystoreTest, StaleTemporariesAreRemovedInTheBackgroundAfterOpen) {
  WriteFile(dir_ / ".kes-tmp-old", "partial");
  WriteFile(dir_ / ".kes-tmp-new", "in flight");
  WriteFile(dir_ / "key", "value");
  // Only a temporary older than any create in progress is removed.
  const auto old = stdfs::file_time_type::clock::now() - std::chrono::hours(2);
  stdfs::last_write_time(dir_ / ".kes-tmp-old", old);
  stdfs::last_write_time(dir_ / "key", old);  // keys are never touched, however old
  auto ks = OpenAt(dir_);
  ASSERT_NE(ks, nullptr);
  // The store serves while the clean-up runs.
  auto got = ks->Get("key", kNoDeadline);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "value");
  fs::WaitForStartupCleanup(*ks);
  EXPECT_FALSE(stdfs::exists(dir_ / ".kes-tmp-old"));
  EXPECT_TRUE(stdfs::exists(dir_ / ".kes-tmp-new"));
  EXPECT_TRUE(stdfs::exists(dir_ / "key"));
  fs::WaitForStartupCleanup(*ks);  // idempotent
}

// Without anyone asking, the clean-up runs by itself a few seconds after
// Open. Polls for the outcome (no fixed sleep decides the result).
TEST_F(FsKeystoreTest, StaleTemporariesAreRemovedWithoutBeingAsked) {
  WriteFile(dir_ / ".kes-tmp-old", "partial");
  stdfs::last_write_time(dir_ / ".kes-tmp-old",
                         stdfs::file_time_type::clock::now() - std::chrono::hours(2));
  auto ks = OpenAt(dir_);
  ASSERT_NE(ks, nullptr);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  while (stdfs::exists(dir_ / ".kes-tmp-old") && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_FALSE(stdfs::exists(dir_ / ".kes-tmp-old"));
}

TEST_F(FsKeystoreTest, CloseAndDestructionEndTheStartupCleanup) {
  for (int i = 0; i < 200; ++i) WriteFile(dir_ / (".kes-tmp-" + std::to_string(i)), "x");
  auto ks = OpenAt(dir_);
  ASSERT_NE(ks, nullptr);
  ks->Close();  // stops (or finds finished) the clean-up; must not hang
  ks->Close();
  ks.reset();
  auto again = OpenAt(dir_);
  ASSERT_NE(again, nullptr);
  again.reset();  // destruction while the clean-up may still run joins it
}

TEST_F(FsKeystoreTest, VanishedDirectoryIsUnreachable) {
  const stdfs::path keys = dir_ / "keys";
  auto ks = OpenAt(keys);
  ASSERT_NE(ks, nullptr);
  ASSERT_TRUE(ks->Create("k", "v", kNoDeadline).ok());
  stdfs::remove_all(keys);
  auto st = ks->Status(kNoDeadline);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.status().code(), Code::kUnreachable);
  EXPECT_EQ(ks->Get("k", kNoDeadline).status().code(), Code::kUnreachable);
  EXPECT_EQ(ks->Delete("k", kNoDeadline).code(), Code::kUnreachable);
  EXPECT_EQ(ks->List("", 0, kNoDeadline).status().code(), Code::kUnreachable);
  EXPECT_EQ(ks->Create("k2", "v", kNoDeadline).code(), Code::kUnreachable);
}

// Only regular files are keys: a dangling symlink once made List fail with
// the errno its fstatat left behind (502 on /v1/key/list), and a FIFO made
// Get block a keystore worker for good.
TEST_F(FsKeystoreTest, OnlyRegularFilesAreKeysAndNoEntryBlocksOrBreaksListing) {
  auto ks = OpenAt(dir_);
  ASSERT_NE(ks, nullptr);
  ASSERT_TRUE(ks->Create("key", "v", kNoDeadline).ok());
  stdfs::create_symlink(dir_ / "nowhere", dir_ / "dangling");
  stdfs::create_symlink(dir_ / "key", dir_ / "alias");
  ASSERT_EQ(::mkfifo((dir_ / "fifo").c_str(), 0600), 0);
  stdfs::create_directory(dir_ / "subdir");

  auto list = ks->List("", 0, kNoDeadline);
  ASSERT_TRUE(list.ok()) << list.status().message();
  EXPECT_EQ(list->names, std::vector<std::string>{"key"});

  for (const char* name : {"fifo", "dangling", "alias", "subdir"}) {
    auto get = std::async(std::launch::async, [&] { return ks->Get(name, kNoDeadline); });
    if (get.wait_for(seconds(10)) != std::future_status::ready) {
      // Release the blocked open so that the test ends instead of hanging.
      const int w = ::open((dir_ / name).c_str(), O_WRONLY | O_NONBLOCK);
      if (w >= 0) ::close(w);
      ADD_FAILURE() << "Get(" << name << ") blocked";
    }
    auto r = get.get();
    EXPECT_EQ(r.status().code(), Code::kNotFound) << name << ": " << r.status().message();
  }
  EXPECT_TRUE(ks->Get("key", kNoDeadline).ok());
}

TEST_F(FsKeystoreTest, ValuesOverOneMebibyteAreRefused) {
  auto ks = OpenAt(dir_);
  ASSERT_NE(ks, nullptr);
  WriteFile(dir_ / "huge", std::string((1 << 20) + 1, 'A'));
  WriteFile(dir_ / "max", std::string(1 << 20, 'A'));
  EXPECT_FALSE(ks->Get("huge", kNoDeadline).ok());
  auto max = ks->Get("max", kNoDeadline);
  ASSERT_TRUE(max.ok());
  EXPECT_EQ(max->size(), size_t{1} << 20);
}

// ---- cache ---------------------------------------------------------------------------

// A backend whose behaviour a test controls.
class FakeStore : public KeyStore {
 public:
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    std::map<std::string, std::string> values;
    std::atomic<bool> down{false};      // Status fails
    std::atomic<bool> get_down{false};  // Get fails
    int gate = 0;                       // Get blocks until this many callers have entered the cache
    std::atomic<int> entered{0};
    std::atomic<int> gets{0}, statuses{0}, closes{0}, creates{0};
    ChangeListener* listener = nullptr;  // the cache, once subscribed
    // With revisions (like etcd): each write gets the next revision, and
    // Get/CreateWithRevision report it; Create blocks on `gate` as Get does.
    bool revisions = false;
    int64_t revision = 0;
    std::map<std::string, int64_t> revs;
  };
  explicit FakeStore(std::shared_ptr<Shared> s) : s_(std::move(s)) {}

  std::string DisplayName() const override { return "Fake"; }
  Result<KeyStoreState> Status(Deadline) override {
    ++s_->statuses;
    if (s_->down) return kes::Status::Unreachable("kes: keystore unreachable: down");
    return KeyStoreState{milliseconds(2)};
  }
  kes::Status Create(std::string_view name, std::string_view value, Deadline) override {
    std::lock_guard lock(s_->mu);
    if (!s_->values.emplace(std::string(name), std::string(value)).second) {
      return kes::Status::KeyExists();
    }
    return kes::Status::Ok();
  }
  Result<std::string> Get(std::string_view name, Deadline) override {
    ++s_->gets;
    std::unique_lock lock(s_->mu);
    s_->cv.wait_for(lock, seconds(10), [&] { return s_->entered.load() >= s_->gate; });
    if (s_->get_down) return kes::Status::Unreachable("down");
    auto it = s_->values.find(std::string(name));
    if (it == s_->values.end()) return kes::Status::KeyNotFound();
    return it->second;
  }
  Result<StoredValue> GetWithRevision(std::string_view name, Deadline deadline) override {
    auto value = Get(name, deadline);
    if (!value.ok()) return value.status();
    std::lock_guard lock(s_->mu);
    return StoredValue{std::move(*value), s_->revisions ? s_->revs[std::string(name)] : 0};
  }
  Result<int64_t> CreateWithRevision(std::string_view name, std::string_view value,
                                     Deadline deadline) override {
    if (!s_->revisions) return KeyStore::CreateWithRevision(name, value, deadline);
    ++s_->creates;
    std::unique_lock lock(s_->mu);
    s_->cv.wait_for(lock, seconds(10), [&] { return s_->entered.load() >= s_->gate; });
    if (!s_->values.emplace(std::string(name), std::string(value)).second) {
      return kes::Status::KeyExists();
    }
    return s_->revs[std::string(name)] = ++s_->revision;
  }
  kes::Status Delete(std::string_view name, Deadline) override {
    std::lock_guard lock(s_->mu);
    if (s_->values.erase(std::string(name)) == 0) return kes::Status::KeyNotFound();
    return kes::Status::Ok();
  }
  Result<ListPage> List(std::string_view prefix, int limit, Deadline) override {
    std::lock_guard lock(s_->mu);
    std::vector<std::string> names;
    for (const auto& [k, v] : s_->values) names.push_back(k);
    return ListAll(names, prefix, limit);
  }
  void Subscribe(ChangeListener* listener) override { s_->listener = listener; }
  void Close() override { ++s_->closes; }

 private:
  std::shared_ptr<Shared> s_;
};

CacheOptions NoTimers() {
  CacheOptions o;
  o.expiry_any = o.expiry_unused = o.expiry_offline = o.probe_interval =
      std::chrono::nanoseconds(0);
  return o;
}

TEST(KeyCache, ChangeFeedEvictsAndReportsItsState) {
  auto shared = std::make_shared<FakeStore::Shared>();
  shared->values["k"] = kStoredKey;
  KeyCache cache(std::make_unique<FakeStore>(shared), NoTimers());
  ASSERT_NE(shared->listener, nullptr);
  EXPECT_FALSE(cache.watching().has_value());  // no feed reported yet
  ASSERT_TRUE(cache.Get("k", kNoDeadline).ok());
  ASSERT_NE(cache.TryGet("k"), nullptr);
  shared->listener->Changed("k", 0);
  EXPECT_EQ(cache.TryGet("k"), nullptr);
  ASSERT_TRUE(cache.Get("k", kNoDeadline).ok());
  shared->listener->ChangedAll();
  EXPECT_EQ(cache.TryGet("k"), nullptr);
  shared->listener->Watching(true);
  EXPECT_EQ(cache.watching(), std::optional<bool>(true));
  shared->listener->Watching(false);
  EXPECT_EQ(cache.watching(), std::optional<bool>(false));
}

// Another node's rotation shows in the feed as its new internal entry
// ("k-v2-", "k-c1-"): the ring of "k" is evicted, other keys stay.
TEST(KeyCache, ChangeOfAnInternalEntryEvictsItsKey) {
  auto shared = std::make_shared<FakeStore::Shared>();
  shared->values["k"] = kStoredKey;
  shared->values["k-v2"] = kStoredKey;  // a key whose name looks like an entry
  KeyCache cache(std::make_unique<FakeStore>(shared), NoTimers());
  ASSERT_NE(shared->listener, nullptr);
  for (std::string_view entry : {"k-v2-", "k-c1-"}) {
    ASSERT_TRUE(cache.Get("k", kNoDeadline).ok());
    ASSERT_TRUE(cache.Get("k-v2", kNoDeadline).ok());
    shared->listener->Changed(entry, 0);
    EXPECT_EQ(cache.TryGet("k"), nullptr) << entry;
    EXPECT_NE(cache.TryGet("k-v2"), nullptr) << entry;
  }
}

// The cached value's revision orders it against the feed's events: only a
// newer change evicts it.
TEST(KeyCache, ChangesNoNewerThanTheCachedValueKeepIt) {
  auto shared = std::make_shared<FakeStore::Shared>();
  shared->revisions = true;
  shared->values["k"] = kStoredKey;
  shared->revs["k"] = 5;
  KeyCache cache(std::make_unique<FakeStore>(shared), NoTimers());
  ASSERT_TRUE(cache.Get("k", kNoDeadline).ok());
  shared->listener->Changed("k", 5);  // the write the cached value came from
  shared->listener->Changed("k", 3);  // an older delete, replayed after a reconnect
  EXPECT_NE(cache.TryGet("k"), nullptr);
  EXPECT_EQ(cache.backend_gets(), 1u);
  shared->listener->Changed("k", 6);  // another server's delete
  EXPECT_EQ(cache.TryGet("k"), nullptr);
  ASSERT_TRUE(cache.Get("k", kNoDeadline).ok());
  shared->listener->Changed("k", 0);  // revision unknown: newer than anything
  EXPECT_EQ(cache.TryGet("k"), nullptr);
}

// A backend with revisions: a created key is cached at its write's revision,
// so the feed's report of that very write does not cost a read.
TEST(KeyCache, ACreateWithARevisionIsCachedAndOutlivesItsOwnEvent) {
  auto shared = std::make_shared<FakeStore::Shared>();
  shared->revisions = true;
  KeyCache cache(std::make_unique<FakeStore>(shared), NoTimers());
  auto kv = crypto::ParseKeyVersion(kStoredKey);
  ASSERT_TRUE(kv.ok());
  ASSERT_TRUE(cache.Create("k", *kv, kNoDeadline).ok());
  shared->listener->Changed("k", shared->revs["k"]);
  KeyRef cached = cache.TryGet("k");
  ASSERT_NE(cached, nullptr);
  EXPECT_EQ(crypto::EncodeKeyVersion(*cached->version(1)).value(), kStoredKey);
  EXPECT_EQ(cache.Create("k", *kv, kNoDeadline), Status::KeyExists());
  EXPECT_EQ(cache.backend_gets(), 0u);
}

// Lets a blocked Get or Create of the fake backend return.
void Release(FakeStore::Shared& shared) {
  {
    std::lock_guard lock(shared.mu);  // no lost wake-up
    ++shared.entered;
  }
  shared.cv.notify_all();
}

// A change reported while the value was being read may postdate the read:
// then the value read is returned but not cached. An older change (the
// write the value came from) does not stop caching.
TEST(KeyCache, AFetchOverlappingANewerChangeIsNotCached) {
  for (const int64_t change : {int64_t{6}, int64_t{5}}) {
    auto shared = std::make_shared<FakeStore::Shared>();
    shared->revisions = true;
    shared->values["k"] = kStoredKey;
    shared->revs["k"] = 5;
    shared->gate = 1;  // Get blocks until the test lets it go
    KeyCache cache(std::make_unique<FakeStore>(shared), NoTimers());
    std::thread reader([&] { EXPECT_TRUE(cache.Get("k", kNoDeadline).ok()); });
    ASSERT_TRUE(Eventually([&] { return shared->gets.load() == 1; }));
    shared->listener->Changed("k", change);  // while the fetch is in the backend
    Release(*shared);
    reader.join();
    EXPECT_EQ(cache.TryGet("k") != nullptr, change == 5) << "change at " << change;
  }
}

// The same for a create: another server deleting the key right after this
// one created it must not leave the deleted key cached here.
TEST(KeyCache, ACreateOverlappingANewerChangeIsNotCached) {
  auto shared = std::make_shared<FakeStore::Shared>();
  shared->revisions = true;
  shared->gate = 1;  // Create blocks until the test lets it go
  KeyCache cache(std::make_unique<FakeStore>(shared), NoTimers());
  auto kv = crypto::ParseKeyVersion(kStoredKey);
  ASSERT_TRUE(kv.ok());
  std::thread creator([&] { EXPECT_TRUE(cache.Create("k", *kv, kNoDeadline).ok()); });
  ASSERT_TRUE(Eventually([&] { return shared->creates.load() == 1; }));
  shared->listener->Changed("k", 100);
  Release(*shared);
  creator.join();
  EXPECT_EQ(cache.TryGet("k"), nullptr);
}

TEST(KeyCache, SingleFlightOnMiss) {
  auto shared = std::make_shared<FakeStore::Shared>();
  shared->values["k"] = kStoredKey;
  constexpr int kThreads = 16;
  shared->gate = kThreads;  // the backend answers once every caller is waiting
  KeyCache cache(std::make_unique<FakeStore>(shared), NoTimers());
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  std::vector<KeyRef> refs(kThreads);
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      ++shared->entered;
      shared->cv.notify_all();
      auto r = cache.Get("k", kNoDeadline);
      if (r.ok()) {
        ++ok;
        refs[i] = *r;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kThreads);
  // One fill: the key plus the two not-found probes of its ring
  // (`k-v2-`, `k-c1-`; rotation.md §4.4).
  EXPECT_EQ(shared->gets.load(), 3);
  EXPECT_EQ(cache.backend_gets(), 1u);
  for (const KeyRef& r : refs) EXPECT_EQ(r, refs[0]);  // one parsed key shared by all
  // A warm cache makes no backend call.
  ASSERT_TRUE(cache.Get("k", kNoDeadline).ok());
  EXPECT_EQ(cache.backend_gets(), 1u);
}

TEST(KeyCache, AWaiterGivesUpAtItsDeadlineWhileAnotherFetchHangs) {
  auto shared = std::make_shared<FakeStore::Shared>();
  shared->values["k"] = kStoredKey;
  shared->gate = 1000;  // the backend hangs until released
  KeyCache cache(std::make_unique<FakeStore>(shared), NoTimers());
  std::thread first([&] { EXPECT_TRUE(cache.Get("k", kNoDeadline).ok()); });
  ASSERT_TRUE(Eventually([&] { return shared->gets.load() == 1; }));
  // The second caller of the same name waits for the first fetch, but only
  // until its own deadline: its worker thread is free again.
  auto r = cache.Get("k", DeadlineIn(milliseconds(200)));
  EXPECT_EQ(r.status(), DeadlineExceeded());
  {
    std::lock_guard lock(shared->mu);
    shared->gate = 0;
  }
  shared->cv.notify_all();
  first.join();
  // One fill only: the key and its two ring probes (rotation.md §4.4).
  EXPECT_EQ(shared->gets.load(), 3);
}

TEST(KeyCache, MissesAreNotCachedAndErrorsPropagate) {
  auto shared = std::make_shared<FakeStore::Shared>();
  shared->values["corrupt"] = "not base64 protobuf!";
  KeyCache cache(std::make_unique<FakeStore>(shared), NoTimers());
  EXPECT_EQ(cache.Get("nope", kNoDeadline).status(), Status::KeyNotFound());
  EXPECT_EQ(cache.Get("nope", kNoDeadline).status(), Status::KeyNotFound());
  EXPECT_EQ(cache.backend_gets(), 2u);  // no negative caching
  auto corrupt = cache.Get("corrupt", kNoDeadline);
  ASSERT_FALSE(corrupt.ok());
  EXPECT_EQ(corrupt.status().http_status(), 502);
  EXPECT_EQ(cache.TryGet("corrupt"), nullptr);
}

TEST(KeyCache, CachedKeysCountsEntries) {
  auto shared = std::make_shared<FakeStore::Shared>();
  shared->values["a"] = kStoredKey;
  shared->values["b"] = kStoredKey;
  KeyCache cache(std::make_unique<FakeStore>(shared), NoTimers());
  EXPECT_EQ(cache.cached_keys(), 0u);
  ASSERT_TRUE(cache.Get("a", kNoDeadline).ok());
  ASSERT_TRUE(cache.Get("a", kNoDeadline).ok());
  ASSERT_TRUE(cache.Get("b", kNoDeadline).ok());
  EXPECT_FALSE(cache.Get("missing", kNoDeadline).ok());
  EXPECT_EQ(cache.cached_keys(), 2u);
  ASSERT_TRUE(cache.Delete("a", kNoDeadline).ok());
  EXPECT_EQ(cache.cached_keys(), 1u);
}

TEST(KeyCache, CreateDoesNotCacheDeleteEvicts) {
  auto shared = std::make_shared<FakeStore::Shared>();
  KeyCache cache(std::make_unique<FakeStore>(shared), NoTimers());
  auto kv = crypto::ParseKeyVersion(kStoredKey);
  ASSERT_TRUE(kv.ok());
  ASSERT_TRUE(cache.Create("k", *kv, kNoDeadline).ok());
  EXPECT_EQ(cache.Create("k", *kv, kNoDeadline), Status::KeyExists());
  EXPECT_EQ(shared->values["k"], kStoredKey);  // encoded like upstream
  EXPECT_EQ(cache.TryGet("k"), nullptr);
  ASSERT_TRUE(cache.Get("k", kNoDeadline).ok());
  EXPECT_NE(cache.TryGet("k"), nullptr);
  ASSERT_TRUE(cache.Delete("k", kNoDeadline).ok());
  EXPECT_EQ(cache.TryGet("k"), nullptr);
  EXPECT_EQ(cache.Delete("k", kNoDeadline), Status::KeyNotFound());
  // A key deleted directly in the backend keeps being served from the cache.
  ASSERT_TRUE(cache.Create("k2", *kv, kNoDeadline).ok());
  ASSERT_TRUE(cache.Get("k2", kNoDeadline).ok());
  shared->values.erase("k2");
  EXPECT_TRUE(cache.Get("k2", kNoDeadline).ok());
  auto list = cache.List("", kNoDeadline);
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->names.empty());
  EXPECT_EQ(cache.DisplayName(), "Fake");
}

TEST(KeyCache, AnyExpiryFlushesEverything) {
  auto shared = std::make_shared<FakeStore::Shared>();
  shared->values["k"] = kStoredKey;
  CacheOptions o = NoTimers();
  o.expiry_any = milliseconds(20);
  KeyCache cache(std::make_unique<FakeStore>(shared), o);
  ASSERT_TRUE(cache.Get("k", kNoDeadline).ok());
  // Used or not, the entry is dropped by the periodic flush.
  EXPECT_TRUE(Eventually([&] { return cache.TryGet("k") == nullptr; }));
}

TEST(KeyCache, UnusedEntriesAreEvicted) {
  auto shared = std::make_shared<FakeStore::Shared>();
  shared->values["k"] = kStoredKey;
  CacheOptions o = NoTimers();
  o.expiry_unused = milliseconds(40);
  KeyCache cache(std::make_unique<FakeStore>(shared), o);
  ASSERT_TRUE(cache.Get("k", kNoDeadline).ok());
  // Probing with Get would mark the key used; watch the backend counter
  // instead, probing rarely enough for two sweeps to pass between probes.
  EXPECT_TRUE(Eventually([&] {
    std::this_thread::sleep_for(milliseconds(200));
    return cache.Get("k", kNoDeadline).ok() && cache.backend_gets() > 1;
  }));
}

TEST(KeyCache, OfflineKeepsServingCachedKeys) {
  auto shared = std::make_shared<FakeStore::Shared>();
  shared->values["k"] = kStoredKey;
  shared->values["other"] = kStoredKey;
  CacheOptions o = NoTimers();
  o.expiry_any = milliseconds(10);
  o.expiry_offline = std::chrono::hours(1);
  o.probe_interval = milliseconds(10);
  KeyCache cache(std::make_unique<FakeStore>(shared), o);
  EXPECT_FALSE(cache.offline());
  ASSERT_TRUE(cache.Status(kNoDeadline).ok());

  shared->down = true;
  ASSERT_TRUE(Eventually([&] { return cache.offline(); }));
  // The probe keeps failing, so the cache stays offline from here on; a key
  // fetched now is cached while the normal flushes are suspended.
  ASSERT_TRUE(cache.Get("k", kNoDeadline).ok());
  shared->get_down = true;
  const int probes = shared->statuses.load();
  // Several "any" periods pass; the cached key survives, uncached ones fail.
  ASSERT_TRUE(Eventually([&] { return shared->statuses.load() >= probes + 5; }));
  EXPECT_NE(cache.TryGet("k"), nullptr);
  EXPECT_FALSE(cache.Get("other", kNoDeadline).ok());
  // Status answers from the flag.
  auto st = cache.Status(kNoDeadline);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.status().code(), Code::kUnreachable);
  EXPECT_EQ(st.status().message(), "kes: keystore unreachable: keystore is offline");

  // Back online: normal flushing resumes.
  shared->down = false;
  shared->get_down = false;
  ASSERT_TRUE(Eventually([&] { return !cache.offline(); }));
  EXPECT_TRUE(Eventually([&] { return cache.TryGet("k") == nullptr; }));
}

TEST(KeyCache, WithoutOfflineCachingFlushesContinue) {
  auto shared = std::make_shared<FakeStore::Shared>();
  shared->values["k"] = kStoredKey;
  CacheOptions o = NoTimers();
  o.expiry_any = milliseconds(10);
  o.probe_interval = milliseconds(10);
  KeyCache cache(std::make_unique<FakeStore>(shared), o);
  shared->down = true;
  ASSERT_TRUE(Eventually([&] { return cache.offline(); }));
  ASSERT_TRUE(cache.Get("k", kNoDeadline).ok());
  EXPECT_TRUE(Eventually([&] { return cache.TryGet("k") == nullptr; }));
}

TEST(KeyCache, DestructionStopsTimersAndClosesBackend) {
  auto shared = std::make_shared<FakeStore::Shared>();
  {
    CacheOptions o;  // upstream-like long periods: shutdown must not wait for them
    KeyCache cache(std::make_unique<FakeStore>(shared), o);
  }
  EXPECT_EQ(shared->closes.load(), 1);
}

}  // namespace
}  // namespace kes::keystore
