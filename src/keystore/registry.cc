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

}  // namespace kes::keystore
