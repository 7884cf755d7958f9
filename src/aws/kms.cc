#include "aws/kms.h"

#include <openssl/crypto.h>

#include "common/json_members.h"
#include "crypto/encoding.h"
#include "crypto/secret_bytes.h"

namespace kes::aws {
namespace {

Status ToStatus(std::string_view op, const AwsError& e) {
  std::string msg = "kms: " + std::string(op) + ": " + e.ToString();
  if (e.transport) return Status::Unreachable(std::move(msg));
  if (e.code == "NotFoundException") return Status(Code::kNotFound, 404, std::move(msg));
  if (e.code == "InvalidCiphertextException" || e.code == "IncorrectKeyException") {
    return Status(Code::kNotAuthentic, 400, std::move(msg));
  }
  return Status::Unavailable(std::move(msg));
}

Result<std::string> Blob(const nlohmann::json& body, const char* member) {
  auto it = body.find(member);
  if (it == body.end() || !it->is_string()) {
    return Status::Unavailable(std::string("kms: response without ") + member);
  }
  auto bytes = crypto::Base64Decode(it->get_ref<const std::string&>());
  if (!bytes) return Status::Unavailable(std::string("kms: invalid base64 in ") + member);
  std::string out(bytes->begin(), bytes->end());
  crypto::Zeroize(bytes->data(), bytes->size());  // a Plaintext member holds key bytes
  return out;
}

void AddContext(nlohmann::json& in, const EncryptionContext& context) {
  if (!context.empty()) in["EncryptionContext"] = context;
}

void WipeMember(nlohmann::json& j, const char* member) {
  if (auto it = j.find(member); it != j.end() && it->is_string()) {
    auto& s = it->get_ref<std::string&>();
    OPENSSL_cleanse(s.data(), s.size());
  }
}

}  // namespace

JsonClientOptions KmsClient::Options(net::Url endpoint, std::string region) {
  JsonClientOptions o;
  o.endpoint = std::move(endpoint);
  o.region = std::move(region);
  o.service = "kms";
  o.target_prefix = "TrentService";
  return o;
}

Result<std::string> KmsClient::Encrypt(std::string_view key_id, std::string_view plaintext,
                                       const EncryptionContext& context) {
  nlohmann::json in = {{"KeyId", key_id}, {"Plaintext", crypto::Base64Encode(plaintext)}};
  AddContext(in, context);
  CallResult r = client_->Call("Encrypt", in);
  WipeMember(in, "Plaintext");
  if (!r.ok()) return ToStatus("Encrypt", *r.error);
  return Blob(r.body, "CiphertextBlob");
}

Result<std::string> KmsClient::Decrypt(std::string_view ciphertext,
                                       const EncryptionContext& context) {
  nlohmann::json in = {{"CiphertextBlob", crypto::Base64Encode(ciphertext)}};
  AddContext(in, context);
  CallResult r = client_->Call("Decrypt", in);
  if (!r.ok()) return ToStatus("Decrypt", *r.error);
  auto plaintext = Blob(r.body, "Plaintext");
  WipeMember(r.body, "Plaintext");
  return plaintext;
}

Result<DataKey> KmsClient::GenerateDataKey(std::string_view key_id,
                                           const EncryptionContext& context) {
  nlohmann::json in = {{"KeyId", key_id}, {"KeySpec", "AES_256"}};
  AddContext(in, context);
  CallResult r = client_->Call("GenerateDataKey", in);
  if (!r.ok()) return ToStatus("GenerateDataKey", *r.error);
  DataKey key;
  auto plaintext = Blob(r.body, "Plaintext");
  WipeMember(r.body, "Plaintext");
  if (!plaintext.ok()) return plaintext.status();
  key.plaintext = std::move(*plaintext);
  KES_ASSIGN_OR_RETURN(key.ciphertext, Blob(r.body, "CiphertextBlob"));
  key.key_arn = StringMember(r.body, "KeyId");
  return key;
}

Result<KeyDescription> KmsClient::DescribeKey(std::string_view key_id) {
  CallResult r = client_->Call("DescribeKey", {{"KeyId", key_id}});
  if (!r.ok()) return ToStatus("DescribeKey", *r.error);
  auto meta = r.body.find("KeyMetadata");
  if (meta == r.body.end() || !meta->is_object())
    return Status::Unavailable("kms: response without KeyMetadata");
  KeyDescription d;
  d.arn = StringMember(*meta, "Arn");
  d.key_state = StringMember(*meta, "KeyState");
  d.enabled = BoolMember(*meta, "Enabled");
  return d;
}

}  // namespace kes::aws
