// `keystore.etcd` (a kes-cpp extension, docs/compatibility.md): keys in an
// etcd v3 cluster, reached through its JSON gateway, shared by any number of
// kes-cpp servers (docs/deployment.md).
#pragma once

#include <string>
#include <vector>

#include "keystore/etcd/etcd_keystore.h"
#include "keystore/registry.h"

namespace kes::keystore::etcd {

struct Config : BackendConfig {
  EtcdOptions options;

  std::string_view Kind() const override { return "etcd"; }
  Status Validate() override;
  Result<std::unique_ptr<KeyStore>> Connect() const override;
};

const Backend& Registration();

}  // namespace kes::keystore::etcd
