// The etcd keystore (kes-cpp extension): one etcd key per KES key, at
// <prefix><name>, its value the stored key in the format every keystore
// uses. Spoken over etcd's v3 JSON gateway (/v3/kv/..., keys and values
// base64) with the project's HTTP client, so no gRPC stack is needed.
//
// Create is one transaction guarded by create_revision == 0, so exactly one
// of any number of concurrent creates wins, on any server. Calls fail over
// to the next endpoint on connection errors and on "no leader" answers; a
// create resent that way compares the stored value with its own, so a write
// whose answer was lost is reported as done, not as "key already exists".
// A watch on <prefix> feeds the cache's ChangeListener (cache coherence
// across servers); it resumes from its last revision after a reconnect.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "keystore/keystore.h"

namespace kes::keystore::etcd {

struct EtcdOptions {
  std::vector<std::string> endpoints;  // "https://10.0.0.1:2379"
  std::string prefix;                  // every key is stored at <prefix><name>
  std::string username;                // etcd auth; empty: none
  std::string password;
  std::string tls_key;  // client certificate (mutual TLS), optional
  std::string tls_cert;
  std::string tls_ca;  // CA bundle for the members' certificates
};

// Builds the keystore and probes the cluster once; an unreachable cluster is
// not fatal at start-up (logged).
Result<std::unique_ptr<KeyStore>> NewEtcdKeyStore(const EtcdOptions& options);

}  // namespace kes::keystore::etcd
