#include "keystore/registry.h"

#include <string>

#define KES_KEYSTORE(name)       \
  namespace name {               \
  const Backend& Registration(); \
  }

namespace kes::keystore {
#include "keystore/backends.inc"
#undef KES_KEYSTORE

const std::vector<const Backend*>& Backends() {
  static const std::vector<const Backend*> all = {
#define KES_KEYSTORE(name) &name::Registration(),
#include "keystore/backends.inc"
#undef KES_KEYSTORE
  };
  return all;
}

Status NotBuilt(std::string_view kind) {
  std::string supported;
  for (const Backend* b : Backends()) {
    if (!b->built) continue;
    if (!supported.empty()) supported += ", ";
    supported += b->kind;
  }
  return Status(Code::kUnsupported, 400,
                "keystore '" + std::string(kind) +
                    "' is not supported by this build of kes-cpp; supported: " + supported);
}

}  // namespace kes::keystore
