// libFuzzer target: TLS PEM files (api.md §1.1) and the PEM block decoder.
#include <cstdint>
#include <string_view>

#include "identity/pem.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)kes::identity::ParseCertificatesPem(text);
  (void)kes::identity::ParsePrivateKeyPem(text, "password");
  (void)kes::identity::IsEncryptedPrivateKeyPem(text);
  std::string_view rest = text;
  while (kes::identity::DecodePemBlock(&rest)) {
  }
  return 0;
}
