// libFuzzer target: the certificate and key readers behind identities
// (identity/identity.h, identity/certificate.h, api.md §2.1, cli.md §3.4):
// the DER slicer that finds a certificate's subjectPublicKeyInfo,
// `kes identity <FILE>` (PEM blocks, PKCS#8 Ed25519 keys) and kes:v1: API
// keys. An identity, when one comes out, is always 64 lower-case hex digits.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>

#include "identity/api_key.h"
#include "identity/certificate.h"
#include "identity/identity.h"

namespace {

void CheckIdentity(std::string_view id) {
  if (id.size() != 64) std::abort();
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) std::abort();
  }
}

// ReadIdentityFile takes a path: the input goes into an in-memory file.
int InputFile() {
  static const int fd = memfd_create("fuzz_identity", 0);
  return fd;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (auto id = kes::identity::IdentityOfDer(std::span<const uint8_t>(data, size)); id.ok()) {
    CheckIdentity(*id);
  }
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto key = kes::identity::APIKey::Parse(text); key.ok()) CheckIdentity(key->Identity());

  const int fd = InputFile();
  if (fd < 0 || ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) {
    std::abort();
  }
  auto contents = kes::identity::ReadIdentityFile("/proc/self/fd/" + std::to_string(fd));
  if (contents.ok()) CheckIdentity(contents->identity);
  return 0;
}
