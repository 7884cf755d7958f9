// How the Secrets Manager keystore turns an AWS error into a KES Status
// (spec keystores.md §4.6). Dispatch is on the AWS error code, never on the
// HTTP status; the message is only consulted to tell "scheduled for
// deletion" apart from other InvalidRequestException causes.
#pragma once

#include <string_view>

#include "aws/error.h"
#include "common/status.h"

namespace kes::keystore::aws {

enum class Operation { kCreate, kRead, kDelete, kList };

// ResourceExistsException on create -> KeyExists; ResourceNotFoundException
// on read/delete -> KeyNotFound; transport failures -> kUnreachable; anything
// else -> kUnavailable with "aws: failed to <op> '<name>': <cause>: <Code>: <Message>".
kes::Status MapAwsError(Operation op, std::string_view name, const kes::aws::AwsError& error);

}  // namespace kes::keystore::aws
