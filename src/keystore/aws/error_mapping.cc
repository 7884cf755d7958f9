#include "keystore/aws/error_mapping.h"

#include <string>

namespace kes::keystore::aws {
namespace {

using kes::aws::AwsError;

bool IsKmsProblem(const AwsError& e) {
  return e.code == "EncryptionFailure" || e.code == "DecryptionFailure" ||
         e.code.starts_with("KMS") || e.code == "DisabledException" ||
         e.code == "KeyUnavailableException" ||
         (e.code == "AccessDeniedException" && e.message.find("KMS") != std::string::npos);
}

bool IsScheduledForDeletion(const AwsError& e) {
  return e.code == "InvalidRequestException" &&
         (e.message.find("marked for deletion") != std::string::npos ||
          e.message.find("scheduled for deletion") != std::string::npos);
}

}  // namespace

kes::Status MapAwsError(Operation op, std::string_view name, const AwsError& e) {
  if (op == Operation::kCreate && e.code == "ResourceExistsException")
    return kes::Status::KeyExists();
  if ((op == Operation::kRead || op == Operation::kDelete) &&
      e.code == "ResourceNotFoundException") {
    return kes::Status::KeyNotFound();
  }
  static constexpr std::string_view kVerbs[] = {"create", "read", "delete", "list"};
  const std::string_view verb = kVerbs[static_cast<int>(op)];
  std::string cause;
  if (e.code == "NoCredentials") {
    cause = "no AWS credentials";
  } else if (e.transport) {
    cause = "AWS endpoint unreachable";
  } else if (IsScheduledForDeletion(e)) {
    cause =
        "the secret is scheduled for deletion in AWS Secrets Manager (restore it or wait until it "
        "is purged)";
  } else if (IsKmsProblem(e)) {
    cause = "the AWS KMS key cannot be used (disabled, pending deletion, missing or access denied)";
  } else if (e.code == "AccessDeniedException") {
    cause = "access denied by AWS IAM";
  } else if (e.code == "UnrecognizedClientException" || e.code == "InvalidSignatureException" ||
             e.code == "IncompleteSignatureException" || e.code == "ExpiredTokenException" ||
             e.code == "MissingAuthenticationTokenException") {
    cause = "AWS rejected the credentials";
  } else if (kes::aws::IsThrottlingError(e)) {
    cause = "AWS throttled the request (retries exhausted)";
  } else if (kes::aws::IsTransientError(e)) {
    cause = "AWS service error (retries exhausted)";
  }
  std::string msg = "aws: failed to " + std::string(verb) + " '" + std::string(name) + "': ";
  if (!cause.empty()) msg += cause + ": ";
  msg += e.ToString();
  if (e.transport) return kes::Status::Unreachable(std::move(msg));
  return kes::Status::Unavailable(std::move(msg));
}

}  // namespace kes::keystore::aws
