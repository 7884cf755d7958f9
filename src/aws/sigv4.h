// SigV4Signer: AWS Signature Version 4 with the Authorization header
// (spec aws-protocol.md §7). Pure computation: the caller supplies the time,
// so tests can freeze it and retries re-sign with a fresh one.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "aws/credentials.h"

namespace kes::aws {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct RequestToSign {
  std::string method;  // "POST"
  std::string path;    // as sent, not yet percent-encoded ("/", "/a b/ሴ")
  std::string query;   // raw query without '?', may hold %XX escapes
  HeaderList headers;  // must include Host; order kept for duplicates
  std::string_view body;
};

struct SigningParams {
  std::string region;
  std::string service;
  bool normalize_path = true;       // every service except S3
  bool sign_body = false;           // add and sign X-Amz-Content-SHA256
  bool omit_session_token = false;  // add the token after signing (unsigned)
};

struct SignedRequest {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signed_headers;
  std::string signature;      // lower-case hex
  std::string authorization;  // value of the Authorization header
  // The request's headers with X-Amz-Date (and X-Amz-Security-Token,
  // X-Amz-Content-SHA256) set and Authorization appended: what to send.
  HeaderList headers;
};

class SigV4Signer {
 public:
  explicit SigV4Signer(SigningParams params) : params_(std::move(params)) {}

  SignedRequest Sign(const RequestToSign& request, const Credentials& credentials,
                     Clock::time_point now) const;

  const SigningParams& params() const { return params_; }

 private:
  SigningParams params_;
};

// Building blocks, exposed for tests.
std::string Sha256Hex(std::string_view data);
std::string UriEncode(std::string_view bytes, bool keep_slash);
std::string CanonicalUri(std::string_view path, bool normalize);
std::string CanonicalQuery(std::string_view query);
std::string FormatAmzDate(Clock::time_point t);  // YYYYMMDDTHHMMSSZ
// Header names that are never signed (hop-by-hop or rewritten by proxies).
bool IsUnsignableHeader(std::string_view lower_name);

}  // namespace kes::aws
