#include "keystore/memory/memory_keystore.h"

#include <map>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "crypto/secret_bytes.h"
#include "keystore/list.h"

namespace kes::keystore {
namespace {

// The stored values are encoded keys: wipe them when they are dropped.
struct StoredValue {
  std::string text;
  explicit StoredValue(std::string_view v) : text(v) {}
  ~StoredValue() { crypto::Zeroize(text.data(), text.size()); }
  StoredValue(const StoredValue&) = delete;
  StoredValue& operator=(const StoredValue&) = delete;
};

class MemoryKeyStore final : public KeyStore {
 public:
  std::string DisplayName() const override { return "In Memory"; }

  Result<KeyStoreState> Status(Deadline deadline) override {
    return KeyStoreState{std::chrono::milliseconds(1)};
  }

  kes::Status Create(std::string_view name, std::string_view value, Deadline deadline) override {
    std::unique_lock lock(mu_);
    auto [it, inserted] = keys_.try_emplace(std::string(name), value);
    if (!inserted) return kes::Status::KeyExists();
    return kes::Status::Ok();
  }

  Result<std::string> Get(std::string_view name, Deadline deadline) override {
    std::shared_lock lock(mu_);
    auto it = keys_.find(name);
    if (it == keys_.end()) return kes::Status::KeyNotFound();
    return it->second.text;
  }

  kes::Status Delete(std::string_view name, Deadline deadline) override {
    std::unique_lock lock(mu_);
    auto it = keys_.find(name);
    if (it == keys_.end()) return kes::Status::KeyNotFound();
    keys_.erase(it);
    return kes::Status::Ok();
  }

  Result<ListPage> List(std::string_view prefix, int limit, Deadline deadline) override {
    std::vector<std::string> names;
    {
      std::shared_lock lock(mu_);
      names.reserve(keys_.size());
      for (const auto& [name, value] : keys_) names.push_back(name);
    }
    return ListAll(std::move(names), prefix, limit);
  }

 private:
  std::shared_mutex mu_;
  std::map<std::string, StoredValue, std::less<>> keys_;
};

}  // namespace

std::unique_ptr<KeyStore> NewMemoryKeyStore() { return std::make_unique<MemoryKeyStore>(); }

}  // namespace kes::keystore
