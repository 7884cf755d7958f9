// libFuzzer target: everything KES reads from an AWS HTTP answer
// (aws-protocol.md §2.4, §8; keystores.md §4): the JSON 1.1 response
// decoding of JsonClient, error code/message extraction and the retry
// classification, the Secrets Manager GetSecretValue/ListSecrets readers,
// the keystore's error mapping, and the container/IMDS credential document.
//
// Input: byte 0 picks the HTTP status; then header lines ("name: value")
// up to an empty line; the rest is the body.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "aws/credential_providers.h"
#include "aws/error.h"
#include "aws/json_client.h"
#include "keystore/aws/error_mapping.h"
#include "keystore/aws/responses.h"

namespace {

kes::net::HttpResponse ToResponse(std::string_view in, uint8_t status_pick) {
  static constexpr int kStatus[] = {200, 200, 200, 204, 301, 400, 403, 404, 409, 429, 500, 503};
  kes::net::HttpResponse r;
  r.status = kStatus[status_pick % std::size(kStatus)];
  for (;;) {
    const size_t eol = in.find('\n');
    const std::string_view line = in.substr(0, eol);
    in = eol == std::string_view::npos ? std::string_view{} : in.substr(eol + 1);
    const size_t colon = line.find(':');
    if (line.empty() || colon == std::string_view::npos) break;
    std::string name(line.substr(0, colon));
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    r.headers.emplace_back(std::move(name), std::string(value));
  }
  r.body = std::string(in);
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace ks = kes::keystore::aws;
  if (size == 0) return 0;
  const kes::net::HttpResponse response =
      ToResponse(std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1), data[0]);

  (void)kes::aws::ParseHttpDate(response.Header("date"));
  (void)kes::aws::ParseCredentialJson(response.body, "fuzz");

  kes::aws::CallResult result = kes::aws::DecodeResponse(response);
  if (result.ok()) {
    if (!result.body.is_object()) std::abort();
    std::vector<std::string> names;
    (void)ks::ReadListSecretsPage(result.body, "my-", &names);
    for (const auto& n : names) {
      if (!n.starts_with("my-")) std::abort();
    }
    (void)ks::TakeSecretValue(result.body, "my-key");
    return 0;
  }
  const kes::aws::AwsError& e = *result.error;
  // A dispatchable code: never empty, never a raw "ns#Code:uri" form.
  if (e.code.empty() || e.code.find_first_of(":#") != std::string::npos) std::abort();
  (void)e.ToString();
  (void)kes::aws::IsThrottlingError(e);
  (void)kes::aws::IsTransientError(e);
  (void)kes::aws::IsClockSkewError(e);
  (void)kes::aws::IsExpiredCredentialsError(e);
  for (auto op : {ks::Operation::kCreate, ks::Operation::kRead, ks::Operation::kDelete,
                  ks::Operation::kList}) {
    if (ks::MapAwsError(op, "my-key", e).ok()) std::abort();
  }
  return 0;
}
