// ConnectKeyStore: one line per backend from a config section to a running
// KeyStore (architecture: "a new backend is one folder plus one line here").
#include <type_traits>

#include "config/config.h"
#include "keystore/aws/secrets_manager.h"
#include "keystore/fs/fs_keystore.h"
#include "keystore/memory/memory_keystore.h"

namespace kes::config {
namespace {

template <typename>
inline constexpr bool kAlwaysFalse = false;

Status NotBuilt(std::string_view kind) {
  return Status(Code::kUnsupported, 400,
                "keystore '" + std::string(kind) +
                    "' is not supported by this build of kes-cpp; supported: fs, "
                    "aws.secretsmanager");
}

}  // namespace

std::string KeyStoreKind(const KeyStoreConfig& config) {
  return std::visit(
      [](const auto& c) -> std::string {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, MemoryKeyStoreConfig>)
          return "memory";
        else if constexpr (std::is_same_v<T, FsKeyStoreConfig>)
          return "fs";
        else if constexpr (std::is_same_v<T, AwsSecretsManagerConfig>)
          return "aws.secretsmanager";
        else if constexpr (std::is_same_v<T, VaultKeyStoreConfig>)
          return "vault";
        else if constexpr (std::is_same_v<T, FortanixKeyStoreConfig>)
          return "fortanix.sdkms";
        else if constexpr (std::is_same_v<T, GemaltoKeyStoreConfig>)
          return "gemalto.keysecure";
        else if constexpr (std::is_same_v<T, GcpKeyStoreConfig>)
          return "gcp.secretmanager";
        else if constexpr (std::is_same_v<T, AzureKeyStoreConfig>)
          return "azure.keyvault";
        else if constexpr (std::is_same_v<T, EntrustKeyStoreConfig>)
          return "entrust.keycontrol";
        else
          static_assert(kAlwaysFalse<T>, "unhandled keystore config");
      },
      config);
}

Result<std::unique_ptr<keystore::KeyStore>> ConnectKeyStore(const KeyStoreConfig& config) {
  if (std::holds_alternative<MemoryKeyStoreConfig>(config)) {
    return keystore::NewMemoryKeyStore();
  }
  if (const auto* fs = std::get_if<FsKeyStoreConfig>(&config)) {
    return keystore::fs::Open(fs->path);
  }
  if (const auto* aws = std::get_if<AwsSecretsManagerConfig>(&config)) {
    return keystore::aws::NewSecretsManager(*aws);
  }
  return NotBuilt(KeyStoreKind(config));
}

keystore::CacheOptions CacheConfig::ToCacheOptions() const {
  keystore::CacheOptions o;
  o.expiry_any = any;
  o.expiry_unused = unused;
  o.expiry_offline = offline;
  return o;
}

}  // namespace kes::config
