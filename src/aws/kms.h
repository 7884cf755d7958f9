// KmsClient: the AWS KMS calls of aws-protocol.md §4 (Encrypt, Decrypt,
// GenerateDataKey, DescribeKey) over JsonClient (`TrentService.<Op>`, SigV4
// service "kms"). KES itself never calls KMS (Secrets Manager uses the key on
// its behalf); this is for tools and future keystores. Plaintexts are
// returned in std::string the caller must wipe.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "aws/json_client.h"
#include "common/status.h"

namespace kes::aws {

using EncryptionContext = std::map<std::string, std::string>;

struct DataKey {
  std::string plaintext;   // raw key bytes
  std::string ciphertext;  // raw CiphertextBlob bytes
  std::string key_arn;
};

struct KeyDescription {
  std::string arn;
  std::string key_state;  // "Enabled", "Disabled", "PendingDeletion", ...
  bool enabled = false;
};

class KmsClient {
 public:
  explicit KmsClient(std::unique_ptr<JsonClient> client) : client_(std::move(client)) {}
  // JsonClientOptions for KMS at `endpoint` signed for `region`.
  static JsonClientOptions Options(net::Url endpoint, std::string region);

  Result<std::string> Encrypt(std::string_view key_id, std::string_view plaintext,
                              const EncryptionContext& context = {});
  Result<std::string> Decrypt(std::string_view ciphertext, const EncryptionContext& context = {});
  Result<DataKey> GenerateDataKey(std::string_view key_id, const EncryptionContext& context = {});
  Result<KeyDescription> DescribeKey(std::string_view key_id);

 private:
  std::unique_ptr<JsonClient> client_;
};

}  // namespace kes::aws
