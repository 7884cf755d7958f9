// libFuzzer target, differential: the request-body decoder
// (server/json.h). DecodeJsonFields first tries a hand-written scanner for
// flat objects of plain strings and falls back to nlohmann's SAX parser;
// whatever the scanner accepts must decode exactly as the library alone
// decodes it. Byte 0 picks the field names of one request type.
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string_view>

#include "server/json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static constexpr std::string_view kImport[] = {"key", "cipher"};
  static constexpr std::string_view kGenerate[] = {"context"};
  static constexpr std::string_view kEncrypt[] = {"plaintext", "context"};
  static constexpr std::string_view kDecrypt[] = {"ciphertext", "context"};
  static constexpr std::string_view kHmac[] = {"message"};
  static constexpr std::span<const std::string_view> kTypes[] = {kImport, kGenerate, kEncrypt,
                                                                 kDecrypt, kHmac};
  const auto names = kTypes[data[0] % std::size(kTypes)];
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);

  const auto fast = kes::server::DecodeJsonFields(body, names);
  const auto library = kes::server::detail::DecodeJsonFieldsWithLibrary(body, names);
  if (fast.has_value() != library.has_value()) std::abort();
  if (fast && fast->values != library->values) std::abort();
  return 0;
}
