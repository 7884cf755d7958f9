// libFuzzer target: the parsers of Azure Key Vault, Azure AD and IMDS answers
// and of the WWW-Authenticate challenge (keystore/azure/response.h), which
// read bytes from the network.
#include <cstdint>
#include <string_view>

#include "keystore/azure/response.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  using namespace kes::keystore::azure;
  (void)ParseError(body);
  if (auto page = ParseVersions(body); page.ok()) (void)OldestVersion(page->versions);
  (void)ParseSecret(body);
  (void)ParseSecretList(body);
  (void)ParseToken(body);
  (void)ParseAadError(body);
  (void)ParseChallenge(body);
  return 0;
}
